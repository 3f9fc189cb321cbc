"""speechllm-infer AUDIO "instruction" --model DIR: one answer about one recording;
speechllm-infer --text "NOTE" --model DIR: a text classifier's label probabilities."""

from __future__ import annotations

import argparse
import json
import sys

from speechllm._warnings import quiet_known_warnings


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``speechllm-infer``."""
    quiet_known_warnings()
    parser = argparse.ArgumentParser(
        prog="speechllm-infer",
        description="Answer an instruction about an audio file with a trained speech LLM "
        "(greedy decoding; any format soundfile reads, resampled to the encoder's rate), or "
        "classify a text with a text classifier (--text; JSON of label probabilities).",
    )
    parser.add_argument("audio", nargs="?", help="audio file (wav, flac, ogg, mp3)")
    parser.add_argument("instruction", nargs="?", help='what to do, e.g. "Transcribe the audio."')
    parser.add_argument(
        "--model", required=True, help="export folder (speechllm-export) or training .ckpt"
    )
    parser.add_argument(
        "--text", help='a text classifier\'s input ("-": read stdin), instead of audio'
    )
    parser.add_argument("--task", action="append", help="only this task's labels (repeatable)")
    parser.add_argument("--top", type=int, default=10, help="labels shown per task (--text)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="answer length cap")
    parser.add_argument("--stream", action="store_true", help="print tokens as they come")
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda if available, else cpu)"
    )
    args = parser.parse_args(argv)
    speech = args.audio is not None and args.instruction is not None
    if (args.text is None and not speech) or (args.text is not None and args.audio is not None):
        parser.error("give AUDIO and INSTRUCTION, or --text (a text classifier)")
    # imported after parsing: torch and the models take seconds to load, --help needs none
    import torch

    from speechllm.inference import answer, classify_text, load_model, stream_answer
    from speechllm.models.text_classifier import TextClassifier

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(args.model, args.device)
    if isinstance(model, TextClassifier) != (args.text is not None):
        kind = "a text classifier: give --text" if args.text is None else "a speech LLM"
        parser.error(f"{args.model} is {kind}")
    if args.text is not None:
        text = sys.stdin.read() if args.text == "-" else args.text
        probs = classify_text(model, text, args.task)
        shown = {task: dict(list(p.items())[: args.top]) for task, p in probs.items()}
        print(json.dumps(shown, indent=2))
    elif args.stream:
        for piece in stream_answer(
            model, args.audio, args.instruction, max_new_tokens=args.max_new_tokens
        ):
            print(piece, end="", flush=True)
        print()
    else:
        print(answer(model, args.audio, args.instruction, max_new_tokens=args.max_new_tokens))


if __name__ == "__main__":
    main()
