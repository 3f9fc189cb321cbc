"""speechllm-export CKPT OUT: a training checkpoint -> a self-describing model folder (and repo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from speechllm._warnings import quiet_known_warnings


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``speechllm-export``."""
    quiet_known_warnings()
    parser = argparse.ArgumentParser(
        prog="speechllm-export",
        description="Export a speechllm training checkpoint to a folder that "
        "SpeechLLM.from_pretrained loads (safetensors weights, config, tokenizer, model card), "
        "and optionally push it to the Hugging Face Hub.",
    )
    parser.add_argument("checkpoint", help="Lightning checkpoint (.ckpt) from speechllm-train")
    parser.add_argument("out", help="output folder")
    parser.add_argument(
        "--merge-lora",
        action="store_true",
        help="fold the LoRA adapters into the LLM and write the merged LLM",
    )
    parser.add_argument(
        "--push-to-hub",
        metavar="ORG/NAME",
        help="upload the export to this Hub model repo (created if missing; token from "
        "HF_TOKEN or `hf auth login`)",
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument(
        "--eval",
        type=Path,
        metavar="DIR",
        help="a speechllm-eval output folder whose report tables go into the model card",
    )
    parser.add_argument("--license", default="other", help="model card license (Hub license id)")
    parser.add_argument(
        "--language", action="append", help="model card language code, repeatable (default: en)"
    )
    parser.add_argument(
        "--dataset", action="append", default=[], help="Hub dataset id trained on, repeatable"
    )
    args = parser.parse_args(argv)
    # imported after parsing: torch and the models take seconds to load, --help needs none
    from speechllm.models.card import CardInfo
    from speechllm.models.hub import push
    from speechllm.models.pretrained import export_checkpoint

    card = CardInfo(
        repo_id=args.push_to_hub,
        evaluation=args.eval,
        license=args.license,
        language=args.language or ["en"],
        datasets=args.dataset,
    )
    path = export_checkpoint(args.checkpoint, args.out, args.merge_lora, card)
    print(f"exported to {path}")
    if args.push_to_hub:
        print(f"pushed: {push(path, args.push_to_hub, private=args.private or None)}")


if __name__ == "__main__":
    main()
