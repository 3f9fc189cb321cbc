"""speechllm-export CKPT OUT: a training checkpoint -> a self-describing model folder."""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate

from speechllm.models.speech_llm import SpeechLLM


def export(checkpoint: str | Path, out: str | Path, merge_lora: bool = False) -> Path:
    """Rebuild the model a checkpoint was trained with, load its weights and save it."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    extra = ckpt.get("speechllm") or {}
    config = extra.get("config")
    if config is None:
        raise ValueError(
            f"{checkpoint}: no model config inside; was it written by speechllm-train?"
        )
    L.seed_everything(config["seed"], verbose=False)
    model: SpeechLLM = instantiate(config["model"], _convert_="all")
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_trainable_state_dict(state, extra.get("adapters", []))
    return model.save_pretrained(out, config["model"], merge_lora=merge_lora)


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
    path = export(args.checkpoint, args.out, args.merge_lora)
    print(f"exported to {path}")


if __name__ == "__main__":
    main()
