"""Saving and loading a trained SpeechLLM: an export folder or a training checkpoint.

This module owns "checkpoint or export folder -> ``SpeechLLM``" (:func:`load`) and the
export folder's save; nothing is ever unpickled (safetensors, ``torch.load(weights_only=True)``).
An export folder:

::

    out/
      config.json             how to rebuild the model: its Hydra node (+ seed, format)
      trainable.safetensors   downsampler + layer weights + classification heads
      adapters/<name>/        each LoRA adapter as a standard peft folder
      tokenizer/              the LLM's tokenizer
      encoder/ llm/           the frozen bases, only when they cannot be loaded by id or path
                              (built from a config) or when the adapters were merged into llm/
      README.md               model card
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from hydra.utils import instantiate
from safetensors.torch import load_file, save_file

from speechllm.models.llm import is_adapter_weight

if TYPE_CHECKING:
    from speechllm.models.speech_llm import SpeechLLM

FORMAT = 1
LOADERS = {
    "encoder": "speechllm.models.AudioEncoder.from_pretrained",
    "llm": "speechllm.models.LLM.from_pretrained",
}


class ModelRecipe:
    """How to rebuild a model: its Hydra node and the seed its config-built bases were drawn
    with (tiny bases are random: the same seed rebuilds the same weights).

    A training run hands one to its module at construction; checkpoints carry it, so a
    checkpoint loads (:func:`load`) without the run's config. A plain class, not a dataclass,
    so Hydra passes it through ``instantiate`` untouched.
    """

    def __init__(self, node: dict[str, Any], seed: int) -> None:
        self.node, self.seed = node, seed

    def build(self) -> SpeechLLM:
        """The model with freshly built bases and untrained trainable parts."""
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        return instantiate(self.node, _convert_="all")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.node, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecipe:
        return cls(data["model"], data["seed"])


def load(path: str | Path) -> SpeechLLM:
    """An export folder or a training ``.ckpt`` as a ``SpeechLLM`` in eval mode."""
    path = Path(path)
    if path.is_dir():
        return load_pretrained(path)
    if path.suffix == ".ckpt" and path.is_file():
        return load_checkpoint(path)[0]
    raise FileNotFoundError(f"{path}: expected an export folder or a .ckpt file")


def load_checkpoint(path: str | Path) -> tuple[SpeechLLM, ModelRecipe]:
    """Rebuild the model a training checkpoint was written from and load its trainable weights."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    extra = ckpt.get("speechllm") or {}
    if extra.get("config") is None:
        raise ValueError(f"{path}: no model config inside; was it written by speechllm-train?")
    recipe = ModelRecipe.from_dict(extra["config"])
    model = recipe.build()
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_trainable_state_dict(state, extra.get("adapters", []))
    return model.eval(), recipe


def export_checkpoint(checkpoint: str | Path, out: str | Path, merge_lora: bool = False) -> Path:
    """A training checkpoint as an export folder (``speechllm-export``)."""
    model, recipe = load_checkpoint(checkpoint)
    return save_pretrained(model, out, recipe.node, merge_lora)


def _loadable(node: dict[str, Any]) -> bool:
    return str(node.get("_target_", "")).endswith(".from_pretrained")


def save_pretrained(
    model: SpeechLLM, out: str | Path, config: dict[str, Any], merge_lora: bool = False
) -> Path:
    """Write ``model`` to ``out``; ``config`` is the Hydra node it was built from.

    With ``merge_lora`` the active adapters are folded into the LLM (in place: the model in
    memory is merged afterwards too) and the merged LLM is written to ``llm/``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    node = json.loads(json.dumps(config))  # a private, plain copy
    trainable = {
        k: v.contiguous()
        for k, v in model.trainable_state_dict().items()
        if k.startswith(("downsampler.", "encoder.layer_weights.", "heads."))
    }
    save_file(trainable, out / "trainable.safetensors")
    if not _loadable(node["encoder"]):
        model.encoder.save_pretrained(out / "encoder")
        node["encoder"] = _local(node["encoder"], "encoder")
    llm_node = node["llm"]
    llm_node.pop("adapter_paths", None)  # every adapter is written to adapters/ below
    if merge_lora and model.llm.attached_adapters:
        model.llm.merge_adapters()
    else:
        for name in model.llm.attached_adapters:
            model.llm.save_adapter(name, out / "adapters" / name)
    if merge_lora or not _loadable(llm_node):
        model.llm.save_base(out / "llm")
        node["llm"] = _local(llm_node, "llm")
        if merge_lora:
            node["llm"]["adapters"] = {}
    model.llm.tokenizer.save_pretrained(out / "tokenizer")
    (out / "config.json").write_text(json.dumps({"format": FORMAT, "model": node}, indent=2))
    (out / "README.md").write_text(_model_card(node, trainable, model, merge_lora))
    return out


def _local(node: dict[str, Any], folder: str) -> dict[str, Any]:
    """The node rewritten to load the saved base from ``folder`` inside the export."""
    kept = {
        k: node[k]
        for k in ("last_layer_only", "adapters", "gradient_checkpointing", "dtype")
        if k in node
    }
    return {"_target_": LOADERS[folder], "name_or_path": f"./{folder}", **kept}


def load_pretrained(path: str | Path, **overrides: Any) -> SpeechLLM:
    """Rebuild a model written by :func:`save_pretrained` (bases from their ids or paths)."""
    path = Path(path)
    meta = json.loads((path / "config.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}/config.json: unknown export format {meta.get('format')!r}")
    node = meta["model"]
    for part in ("encoder", "llm"):
        name = node[part].get("name_or_path", "")
        if name.startswith("./"):
            node[part]["name_or_path"] = str(path / name[2:])
    node.update(overrides)
    model: SpeechLLM = instantiate(node, _convert_="all")
    adapters = sorted(p.name for p in (path / "adapters").glob("*") if p.is_dir())
    for name in adapters:
        model.llm.load_adapter(path / "adapters" / name, name)
    state = load_file(path / "trainable.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    expected = {k for k in model.trainable_state_dict() if not is_adapter_weight(k)}
    if expected - set(state) or unexpected:
        raise ValueError(
            f"{path}: trainable weights do not match the model "
            f"(missing {sorted(expected - set(state))}, unexpected {unexpected})"
        )
    return model.eval()


def _model_card(
    node: dict[str, Any], trainable: dict[str, torch.Tensor], model: SpeechLLM, merged: bool
) -> str:
    params = sum(v.numel() for v in trainable.values())
    encoder = node["encoder"].get("name_or_path", node["encoder"]["_target_"])
    adapters = ", ".join(model.llm.attached_adapters) or ("merged into llm/" if merged else "none")
    return (
        "# SpeechLLM export\n\n"
        f"- encoder: `{encoder}` (frozen)\n"
        f"- LLM: `{node['llm'].get('name_or_path', node['llm']['_target_'])}` (frozen)\n"
        f"- downsampler + layer weights: {params:,} parameters (`trainable.safetensors`)\n"
        f"- LoRA adapters: {adapters}\n"
        f"- prompt template: `{node.get('prompt_template', '')}`\n\n"
        "```python\nfrom speechllm import SpeechLLM\n"
        'model = SpeechLLM.from_pretrained("<this folder>")\n```\n'
    )
