"""Saving and loading a trained model: an export folder or a training checkpoint.

This module owns "checkpoint or export folder -> model" (:func:`load`) and the export folder's
save; nothing is ever unpickled (safetensors, ``torch.load(weights_only=True)``). The model is a
``SpeechLLM``, or a ``TextClassifier`` (heads on an LLM, no encoder: two-step PEFT's text-only
step two), as its config's ``_target_`` says. An export folder:

::

    out/
      config.json             how to rebuild the model: its Hydra node (+ seed, format)
      trainable.safetensors   downsampler + layer weights + classification heads
      adapters/<name>/        each LoRA adapter as a standard peft folder
      tokenizer/              the LLM's tokenizer
      encoder/ llm/           the frozen bases, only when they cannot be loaded by id or path
                              (built from a config) or when the adapters were merged into llm/
                              (a text classifier has no encoder)
      README.md               model card (:mod:`speechllm.models.card`)

``config.json`` is data: :mod:`speechllm.models.components` checks it (and a checkpoint's
recipe) before anything is built from it. An export can live on the Hugging Face Hub
(:mod:`speechllm.models.hub`): :func:`load` takes a repo id too, :func:`push_to_hub` uploads.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from huggingface_hub import CommitInfo
from hydra.utils import instantiate
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from speechllm.models import components, hub
from speechllm.models.card import Base, CardInfo, model_card
from speechllm.models.fetch import cache_dir as fetch_cache
from speechllm.models.folders import written_whole
from speechllm.models.llm import is_adapter_weight

if TYPE_CHECKING:
    from speechllm.models.speech_llm import SpeechLLM
    from speechllm.models.text_classifier import TextClassifier

    Model = SpeechLLM | TextClassifier

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

    def build(self) -> Model:
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


SHARDED_META = "meta.pt"
"""Lightning's file, in a sharded checkpoint folder, of everything but the shards."""


def load(
    path_or_id: str | Path,
    device: str | torch.device = "cpu",
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> Model:
    """An export folder, a training ``.ckpt`` or a Hub repo id (``org/name``) holding an
    export, as a ``SpeechLLM`` (or a ``TextClassifier``, as its config says) on ``device`` in
    eval mode: the one loader of inference
    (``speechllm.inference.load_model``, ``speechllm-infer``), serving and ``speechllm-eval``.

    Args:
        path_or_id: a local folder or ``.ckpt``, else a model repo on the Hub.
        device: where the model runs (``cpu``, ``cuda``, ``cuda:1``...).
        revision: the repo's branch, tag or commit (Hub ids only).
        token: a Hub token for private or gated repos (default: the logged-in one).
        cache_dir: the Hub cache (default ``HF_HUB_CACHE``).
        local_files_only: never contact the Hub (as ``HF_HUB_OFFLINE=1``).
    """
    path = Path(path_or_id)
    if path.suffix == ".ckpt" and path.exists():  # a file, or a sharded folder (FSDP)
        model = load_checkpoint(path)[0]
    else:
        model = load_pretrained(path_or_id, revision, token, cache_dir, local_files_only)
    return model.to(device).eval()


def load_checkpoint(path: str | Path) -> tuple[Model, ModelRecipe]:
    """Rebuild the model a training checkpoint was written from and load its trainable weights.

    ``path`` is a ``.ckpt`` file, or the folder of shards ``trainer=fsdp`` writes (its shards
    are gathered into one state dict here, without a process group).
    """
    ckpt = _read_sharded(Path(path)) if Path(path).is_dir() else _read_file(Path(path))
    extra = ckpt.get("speechllm") or {}
    if extra.get("config") is None:
        raise ValueError(f"{path}: no model config inside; was it written by speechllm-train?")
    components.check(extra["config"]["model"], str(path), "speechllm.config.model")
    recipe = ModelRecipe.from_dict(extra["config"])
    model = recipe.build()
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_trainable_state_dict(state, extra.get("adapters", []))
    return model.eval(), recipe


def trained_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The trained weights (downsampler, layer weights, heads, adapters) a training checkpoint
    (file or sharded folder) or an export folder holds, keys as in the model's ``state_dict()``:
    what step two reads to start from step one's alignment (the bases are not needed)."""
    path = Path(path)
    if path.suffix == ".ckpt" and path.exists():
        ckpt = _read_sharded(path) if path.is_dir() else _read_file(path)
        return {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    if (path / "trainable.safetensors").is_file():
        return load_file(path / "trainable.safetensors")
    raise FileNotFoundError(
        f"{path}: neither a training checkpoint (.ckpt) nor an export folder "
        "(trainable.safetensors)"
    )


def _read_file(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_sharded(path: Path) -> dict[str, Any]:
    """A sharded checkpoint folder as one checkpoint dict: ``meta.pt`` plus the gathered
    ``state_dict`` (the optimizer shards are not read)."""
    ckpt = _read_file(path / SHARDED_META)
    with tempfile.TemporaryDirectory() as tmp:
        dcp_to_torch_save(path, Path(tmp) / "full.pt")
        ckpt["state_dict"] = _read_file(Path(tmp) / "full.pt")["state_dict"]
    return ckpt


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    merge_lora: bool = False,
    card: CardInfo | None = None,
) -> Path:
    """A training checkpoint as an export folder (``speechllm-export``); the card reads the
    run's config beside the checkpoint unless ``card.training`` is given."""
    model, recipe = load_checkpoint(checkpoint)
    card = card or CardInfo()
    if card.training is None:
        card = replace(card, training=run_config(checkpoint))
    return save_pretrained(model, out, recipe.node, merge_lora, card)


def run_config(checkpoint: str | Path) -> dict[str, Any] | None:
    """The resolved config of the run that wrote ``<run>/checkpoints/x.ckpt``: the loggers'
    ``hparams.yaml`` or Hydra's ``.hydra/config.yaml``; ``None`` if neither is there."""
    run = Path(checkpoint).resolve().parent.parent
    for found in [*sorted(run.glob("*/hparams.yaml")), run / ".hydra" / "config.yaml"]:
        if found.is_file():
            return yaml.safe_load(found.read_text())
    return None


def _loadable(node: dict[str, Any]) -> bool:
    return str(node.get("_target_", "")).endswith(".from_pretrained")


def save_pretrained(
    model: Model,
    out: str | Path,
    config: dict[str, Any],
    merge_lora: bool = False,
    card: CardInfo | None = None,
) -> Path:
    """Write ``model`` to ``out``; ``config`` is the Hydra node it was built from.

    With ``merge_lora`` the active adapters are folded into the LLM (in place: the model in
    memory is merged afterwards too) and the merged LLM is written to ``llm/``. ``card``
    feeds the model card (training config, eval report, Hub metadata).
    """
    out = Path(out)
    node = json.loads(json.dumps(config))  # a private, plain copy
    components.check(node, "the model config", "model")  # never write what load refuses
    if out.exists() and not _replaceable(out):
        raise FileExistsError(
            f"{out} exists and is not an export: give the export a folder of its own"
        )
    with written_whole(out) as tmp:  # a kill leaves the old export or none, never half
        _write_export(model, tmp, node, merge_lora, card, out)
    return out


def _replaceable(out: Path) -> bool:
    """An earlier export, or an empty folder: what an export may replace."""
    if out.is_dir() and not any(out.iterdir()):
        return True
    try:
        return json.loads((out / "config.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _write_export(
    model: Model,
    out: Path,
    node: dict[str, Any],
    merge_lora: bool,
    card: CardInfo | None,
    final: Path,
) -> None:
    """:func:`save_pretrained`'s files, written into ``out`` (renamed to ``final`` after)."""
    trainable = {
        k: v.contiguous()
        for k, v in model.trainable_state_dict().items()
        if k.startswith(("downsampler.", "encoder.layer_weights.", "heads.", "ctc."))
    }
    save_file(trainable, out / "trainable.safetensors")
    parts = _parts(node)
    for part in parts:  # bases fetched into the cache load on any machine
        node[part] = _cache_relative(node[part])
    bases = {part: _name(node[part]) for part in parts}
    copied: dict[str, str | None] = dict.fromkeys(parts)
    if "encoder" in node and not _loadable(node["encoder"]):
        model.encoder.save_pretrained(out / "encoder")
        node["encoder"] = _local(node["encoder"], "encoder")
        copied["encoder"] = "built from a config, it has no id to load it by"
    llm_node = node["llm"]
    llm_node.pop("adapter_paths", None)  # every adapter is written to adapters/ below
    adapters = list(model.llm.attached_adapters)
    if merge_lora and adapters:
        model.llm.merge_adapters()
        copied["llm"] = f"the LoRA adapters ({', '.join(adapters)}) are merged into it"
        adapters = []
    for name in adapters:
        model.llm.save_adapter(name, out / "adapters" / name)
    if merge_lora or not _loadable(llm_node):
        model.llm.save_base(out / "llm")
        node["llm"] = _local(llm_node, "llm")
        copied["llm"] = copied["llm"] or "built from a config, it has no id to load it by"
        if merge_lora:
            node["llm"]["adapters"] = {}
    model.llm.tokenizer.save_pretrained(out / "tokenizer")
    (out / "config.json").write_text(json.dumps({"format": FORMAT, "model": node}, indent=2))
    card = card or CardInfo()
    text = model_card(
        card,
        [Base(part, bases[part], copied[part]) for part in parts],
        node.get("prompt_template", ""),
        adapters,
        sum(v.numel() for v in trainable.values()),
        card.repo_id or str(final),
        tasks=sorted(node["label_sets"]) if "label_sets" in node else None,
    )
    (out / "README.md").write_text(text)
    _readable(out)


def _readable(folder: Path) -> None:
    """Files 0644, folders 0755: safetensors writes 0600, which a server running as another
    user cannot read; an export is meant to be shared."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _parts(node: dict[str, Any]) -> list[str]:
    """The frozen bases a model node holds: ``encoder`` (a speech LLM) and ``llm``."""
    return [part for part in ("encoder", "llm") if part in node]


def _name(node: dict[str, Any]) -> str:
    return str(node.get("name_or_path") or node["_target_"])


CACHE_PREFIX = "{speechllm_cache}/"
"""Stands for the cache of fetched checkpoints (:func:`speechllm.models.fetch.cache_dir`) in an
export's base paths, so an export of a model on ``speechllm-fetch`` bases loads on a machine
whose cache lives elsewhere."""


def _cache_relative(node: dict[str, Any]) -> dict[str, Any]:
    name = str(node.get("name_or_path", ""))
    try:
        inside = Path(name).resolve().relative_to(fetch_cache().resolve())
    except ValueError:
        return node
    return {**node, "name_or_path": CACHE_PREFIX + inside.as_posix()} if name else node


def _local(node: dict[str, Any], folder: str) -> dict[str, Any]:
    """The node rewritten to load the saved base from ``folder`` inside the export."""
    kept = {
        k: node[k]
        for k in ("last_layer_only", "adapters", "gradient_checkpointing", "dtype")
        if k in node
    }
    return {"_target_": LOADERS[folder], "name_or_path": f"./{folder}", **kept}


def push_to_hub(
    model: Model,
    repo_id: str,
    config: dict[str, Any],
    merge_lora: bool = False,
    card: CardInfo | None = None,
    token: str | bool | None = None,
    private: bool | None = None,
) -> CommitInfo:
    """Export ``model`` (as :func:`save_pretrained`) and upload it to ``repo_id`` in one
    commit; to push a folder already exported, use :func:`speechllm.models.hub.push`."""
    card = replace(card or CardInfo(), repo_id=(card and card.repo_id) or repo_id)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(model, Path(tmp) / "export", config, merge_lora, card)
        return hub.push(folder, repo_id, token, private)


def load_pretrained(
    path_or_id: str | Path,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    **overrides: Any,
) -> Model:
    """Rebuild a model written by :func:`save_pretrained`, from a folder or a Hub repo id
    (arguments as :func:`load`); frozen bases come from their ids or paths, the adapters load
    with the LLM (``adapter_paths``), ``overrides`` replace top-level keys of the model node
    (after the file's config is checked)."""
    path = hub.export_folder(path_or_id, revision, token, cache_dir, local_files_only)
    source = path / "config.json"
    try:
        meta = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{source}: not a readable export config ({err})") from err
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{source}: unknown export format {meta.get('format')!r} (this speechllm reads "
            f"format {FORMAT}); export it again from its checkpoint with speechllm-export"
        )
    node = meta["model"]
    components.check(node, str(source), "model")
    for part in _parts(node):
        name = node[part].get("name_or_path", "")
        if name.startswith(CACHE_PREFIX):
            node[part]["name_or_path"] = str(fetch_cache() / name.removeprefix(CACHE_PREFIX))
        if name.startswith("./"):
            local = (path / name[2:]).resolve()
            if not local.is_relative_to(path.resolve()):
                raise components.UnsafeConfigError(
                    f"{source}: model.{part}.name_or_path: {name!r} leaves the export folder"
                )
            node[part]["name_or_path"] = str(local)
    adapters = sorted(p.name for p in (path / "adapters").glob("*") if p.is_dir())
    node["llm"]["adapter_paths"] = {name: str(path / "adapters" / name) for name in adapters}
    node.update(overrides)
    model: Model = instantiate(node, _convert_="all")
    state = load_file(path / "trainable.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    expected = {k for k in model.trainable_state_dict() if not is_adapter_weight(k)}
    if expected - set(state) or unexpected:
        raise ValueError(
            f"{path}: trainable weights do not match the model "
            f"(missing {sorted(expected - set(state))}, unexpected {unexpected})"
        )
    return model.eval()
