"""FSDP2 sharding of a SpeechLLM: one unit per transformer block, trainable-only checkpoints.

Why per block: FSDP gathers one unit's full parameters at a time. With the whole model as one
unit every rank holds the full LLM during forward and backward, so sharding saves nothing; with
one unit per block a rank holds its shard of everything plus one gathered block (prefetching
the next). The blocks are what Hugging Face already names as unsplittable
(``_no_split_modules``: ``LlamaDecoderLayer``, ``WhisperEncoderLayer``...), else the members of
a ``layers`` list (WavLM and wav2vec2 name none)::

    SpeechLLM (root unit: embeddings, norms, downsampler, layer weights, heads, conv front end)
     ├─ encoder block 0 .. N-1    one unit each (frozen)
     └─ LLM block 0 .. M-1        one unit each (frozen base + its LoRA weights, trainable)

FSDP2 (``fully_shard``) keeps each parameter a ``DTensor`` of its own dtype and
``requires_grad``: a frozen bf16 base beside fp32 LoRA weights in one block shards as is (FSDP1
flattens a unit into one tensor, which needs one dtype). Only the trainable parameters of a
unit must share a dtype, which the precision policy guarantees (they are fp32).

A checkpoint holds the trainable parameters only (the frozen base comes from its source), as
shards written by each rank (:func:`save_trainable`, or Lightning's distributed checkpoint under
:class:`TrainableShardsStrategy`) or gathered (:func:`full_trainable_state`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.optim import Optimizer

from speechllm.models.folders import partial_name, publish_folder
from speechllm.models.pretrained import SHARDED_META
from speechllm.models.speech_llm import SpeechLLM


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of every Hugging Face model inside ``model``, in module order."""
    names: set[str] = set()
    for module in model.modules():
        names |= set(getattr(module, "_no_split_modules", None) or ())
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    inside = {id(m) for b in blocks for m in b.modules()}
    for name, module in model.named_modules():  # bases that name no block: their `layers`
        if name.rsplit(".", 1)[-1] == "layers" and isinstance(module, nn.ModuleList):
            blocks += [m for m in module if id(m) not in inside]
    order = {id(m): i for i, m in enumerate(model.modules())}
    return sorted(blocks, key=lambda m: order[id(m)])


def shard(
    model: SpeechLLM, mesh: DeviceMesh | None = None, reshard_after_forward: bool = True
) -> list[nn.Module]:
    """Shard ``model`` in place over ``mesh`` (default: every rank); returns the block units.

    ``reshard_after_forward`` applies to the blocks (ZeRO-3 when true, ZeRO-2 when false).

    Attach every adapter the run will train before: a unit's parameters are fixed when it is
    sharded (the curriculum does this for sharded strategies).
    """
    blocks = transformer_blocks(model)
    if not blocks:
        raise ValueError(f"no transformer blocks found in {type(model).__name__} to shard")
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh)  # the root keeps its parameters gathered until backward
    return blocks


def full_trainable_state(model: SpeechLLM) -> dict[str, torch.Tensor]:
    """The trainable weights gathered whole on every rank (a collective), as CPU tensors."""
    return {
        name: (p.full_tensor() if isinstance(p, DTensor) else p).cpu()
        for name, p in model.trainable_state_dict().items()
    }


def _state(model: SpeechLLM, optimizer: Optimizer | None) -> dict[str, dict]:
    state: dict[str, dict] = {"model": model.trainable_state_dict()}
    if optimizer is not None:
        state["optimizer"] = get_optimizer_state_dict(model, optimizer)
    return state


def save_trainable(model: SpeechLLM, optimizer: Optimizer | None, path: str | Path) -> None:
    """Each rank writes its shards of the trainable weights and their optimizer state."""
    dcp.save(_state(model, optimizer), checkpoint_id=str(path))


def load_trainable(model: SpeechLLM, optimizer: Optimizer | None, path: str | Path) -> None:
    """Load :func:`save_trainable`'s folder in place; the frozen base is left as it is."""
    state = _state(model, optimizer)
    dcp.load(state, checkpoint_id=str(path))  # in place: the model's values are its parameters
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, state["optimizer"])


class TrainableShardsStrategy(ModelParallelStrategy):
    """Lightning's FSDP2 strategy, resuming from checkpoints that hold only what trains.

    ``ModelParallelStrategy`` loads a sharded checkpoint into every parameter of the model, so a
    checkpoint without the frozen base fails ("Missing key"); here the model loads the keys the
    checkpoint has. It also restores the model after setup, once the optimizer is built; the
    curriculum then rebuilds the optimizer for the saved stage (its parameters may differ from
    the first stage's), so the optimizer state is loaded afterwards, into that optimizer.
    """

    _meta = SHARDED_META

    def save_checkpoint(
        self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any | None = None
    ) -> None:
        """Write the shards to a temporary folder beside ``filepath``, then rename it into
        place: Lightning writes them into the target itself, so a kill mid-save (a requeue
        often is one) left ``last.ckpt`` half old shards, half new, and no other copy."""
        if not self._save_distributed_checkpoint:
            return super().save_checkpoint(checkpoint, filepath, storage_options)
        target = Path(self.broadcast(str(filepath)))
        tmp = Path(self.broadcast(str(partial_name(target))))  # rank 0's name on every rank
        super().save_checkpoint(checkpoint, tmp, storage_options)
        self.barrier("trainable_shards_written")
        if self.is_global_zero:
            publish_folder(tmp, target)
        self.barrier("trainable_shards_published")

    @property
    def lightning_restore_optimizer(self) -> bool:
        return True  # through load_optimizer_state_dict below, after the curriculum

    def load_checkpoint(self, checkpoint_path: Any, weights_only: bool | None = None) -> dict:
        path = Path(self.broadcast(checkpoint_path))
        if not (path / self._meta).is_file():
            return super().load_checkpoint(checkpoint_path, weights_only)
        saved = dcp.FileSystemReader(str(path)).read_metadata().state_dict_metadata
        state = get_model_state_dict(self.model)
        state = {k: v for k, v in state.items() if f"state_dict.{k}" in saved}
        dcp.load({"state_dict": state}, checkpoint_id=str(path))
        set_model_state_dict(self.model, state, options=StateDictOptions(strict=False))
        checkpoint = torch.load(path / self._meta, weights_only=weights_only)
        checkpoint["optimizer_states"] = str(path)  # loaded from the shards once rebuilt
        return checkpoint

    def load_optimizer_state_dict(self, checkpoint: dict) -> None:
        for i, optimizer in enumerate(self.optimizers):
            state = {f"optimizer_{i}": get_optimizer_state_dict(self.model, optimizer)}
            dcp.load(state, checkpoint_id=checkpoint["optimizer_states"])
            set_optimizer_state_dict(self.model, optimizer, state[f"optimizer_{i}"])
