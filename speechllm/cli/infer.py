"""speechllm-infer AUDIO "instruction" --model DIR: one answer about one recording."""

from __future__ import annotations

import argparse

from speechllm._warnings import quiet_known_warnings


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``speechllm-infer``."""
    quiet_known_warnings()
    parser = argparse.ArgumentParser(
        prog="speechllm-infer",
        description="Answer an instruction about an audio file with a trained speech LLM "
        "(greedy decoding; any format soundfile reads, resampled to the encoder's rate).",
    )
    parser.add_argument("audio", help="audio file (wav, flac, ogg, mp3)")
    parser.add_argument("instruction", help='what to do, e.g. "Transcribe the audio."')
    parser.add_argument(
        "--model", required=True, help="export folder (speechllm-export) or training .ckpt"
    )
    parser.add_argument("--max-new-tokens", type=int, default=128, help="answer length cap")
    parser.add_argument("--stream", action="store_true", help="print tokens as they come")
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda if available, else cpu)"
    )
    args = parser.parse_args(argv)
    # imported after parsing: torch and the models take seconds to load, --help needs none
    import torch

    from speechllm.inference import answer, load_model, stream_answer

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(args.model, args.device)
    if args.stream:
        for piece in stream_answer(
            model, args.audio, args.instruction, max_new_tokens=args.max_new_tokens
        ):
            print(piece, end="", flush=True)
        print()
    else:
        print(answer(model, args.audio, args.instruction, max_new_tokens=args.max_new_tokens))


if __name__ == "__main__":
    main()
