"""speechllm-export CKPT OUT: a training checkpoint -> a self-describing model folder."""

from __future__ import annotations

import argparse

from speechllm.models.pretrained import export_checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="speechllm-export",
        description="Export a speechllm training checkpoint to a folder that "
        "SpeechLLM.from_pretrained loads (safetensors weights, config, tokenizer, model card).",
    )
    parser.add_argument("checkpoint", help="Lightning checkpoint (.ckpt) from speechllm-train")
    parser.add_argument("out", help="output folder")
    parser.add_argument(
        "--merge-lora",
        action="store_true",
        help="fold the LoRA adapters into the LLM and write the merged LLM",
    )
    args = parser.parse_args(argv)
    path = export_checkpoint(args.checkpoint, args.out, args.merge_lora)
    print(f"exported to {path}")


if __name__ == "__main__":
    main()
