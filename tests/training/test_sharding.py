"""FSDP2 sharding on 2 CPU processes over gloo: units, mixed dtypes, loss parity, checkpoints.

Lightning refuses FSDP on CPU, so this drives torch's ``fully_shard`` directly; the Lightning
run is exercised by ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch.distributed.tensor import DTensor

from speechllm.models import ClassificationHead
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm, tiny_lora
from speechllm.testing import tiny_batches
from speechllm.training.sharding import (
    full_trainable_state,
    load_trainable,
    save_trainable,
    shard,
    transformer_blocks,
)

TRAINABLE = ["downsampler", "layer_weights", "heads", "lora"]


def make_model(encoder: str = "wavlm") -> SpeechLLM:
    """A bf16 frozen LLM with fp32 LoRA, fp32 downsampler and head: the mixed case."""
    torch.manual_seed(0)
    model = SpeechLLM(
        tiny_encoder(encoder),
        partial(ConvDownsampler),
        tiny_llm("llama", adapters={"default": tiny_lora()}, dtype="bfloat16"),
        heads={"ic": partial(ClassificationHead, labels=["even", "odd"])},
    )
    model.set_trainable(TRAINABLE)
    return model


@pytest.mark.parametrize("encoder", ["wavlm", "whisper"])
def test_units_are_the_transformer_blocks_of_encoder_and_llm(encoder: str) -> None:
    model = make_model(encoder)
    names = [type(b).__name__ for b in transformer_blocks(model)]
    n_enc = model.encoder.model.config.num_hidden_layers
    n_llm = model.llm.model.config.num_hidden_layers
    enc_block = {"wavlm": "WavLMEncoderLayer", "whisper": "WhisperEncoderLayer"}[encoder]
    assert len(names) == n_enc + n_llm
    assert names[n_enc:] == ["LlamaDecoderLayer"] * n_llm
    assert all(n.startswith(enc_block) for n in names[:n_enc]), names  # WavLM: ...StableLayerNorm


def _sgd(model: SpeechLLM) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _step(model: SpeechLLM, opt: torch.optim.Optimizer, batch: dict) -> float:
    loss = model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.item()


def _half(batch: dict, rank: int) -> dict:
    return {k: v[rank : rank + 1] for k, v in batch.items()}


def _worker(rank: int, world: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.set_num_threads(1)
    batches = tiny_batches(3, 2, tasks=("asr", "ic"), seed=0)  # global batches of 2 items
    reference = make_model()  # unsharded, trains on both halves: the mean of rank losses
    model = copy.deepcopy(reference)
    shard(model)
    opt, ref_opt = _sgd(model), _sgd(reference)  # SGD: Adam would amplify rounding in tiny grads

    # mixed frozen/trainable and bf16/fp32 parameters in one unit, all sharded
    block = model.llm.model.base_model.model.model.layers[0]
    dtypes = {(p.dtype, p.requires_grad) for p in block.parameters()}
    assert dtypes == {(torch.bfloat16, False), (torch.float32, True)}, dtypes
    assert all(isinstance(p, DTensor) for p in model.parameters())

    for batch in batches[:2]:
        loss = _step(model, opt, _half(batch, rank))
        # data parallel semantics: the mean of the ranks' (token-mean) losses
        ref_losses = [reference(**_half(batch, r)).loss for r in range(world)]
        (sum(ref_losses) / world).backward()
        ref_opt.step()
        ref_opt.zero_grad()
        torch.testing.assert_close(loss, ref_losses[rank].item(), atol=1e-3, rtol=2e-3)
    state = full_trainable_state(model)
    for name, value in reference.trainable_state_dict().items():
        torch.testing.assert_close(state[name], value, atol=1e-4, rtol=1e-3, msg=name)
    gathered: list = [None] * world
    dist.all_gather_object(gathered, state)
    for name in state:  # ranks agree on the whole trainable state
        assert torch.equal(gathered[0][name], gathered[1][name]), name

    # trainable-only sharded checkpoint, reloaded into a fresh sharded model with its optimizer
    save_trainable(model, opt, out)
    saved = dcp.FileSystemReader(out).read_metadata().state_dict_metadata
    model_keys = {k.split(".", 1)[1] for k in saved if k.startswith("model.")}
    assert model_keys == set(state)  # no frozen base weight in the checkpoint
    fresh = make_model()
    shard(fresh)
    fresh_opt = _sgd(fresh)
    load_trainable(fresh, fresh_opt, out)
    for name, value in full_trainable_state(fresh).items():
        assert torch.equal(value, state[name]), name
    after = (
        _step(model, opt, _half(batches[2], rank)),
        _step(fresh, fresh_opt, _half(batches[2], rank)),
    )
    assert after[0] == after[1]
    torch.testing.assert_close(full_trainable_state(fresh), full_trainable_state(model))
    dist.destroy_process_group()


def test_fsdp2_two_processes_match_unsharded_and_reload_trainable_shards(tmp_path: Path) -> None:
    init = f"file://{tmp_path / 'pg'}"
    mp.spawn(_worker, args=(2, init, str(tmp_path / "ckpt")), nprocs=2, join=True)
