"""benchmarks/gpu_check.py at toy size on CPU: the GPU check's code path cannot rot unnoticed.

DDP (1 process) and FSDP2 through Lightning (1 process, gloo): a stage transition that makes
LoRA trainable, a trainable-only checkpoint, a resume into the next stage.
"""

from __future__ import annotations

import json
import os
import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.distributed.checkpoint as dcp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def leaves_no_process_group() -> Iterator[None]:
    """Lightning runs the check in this process: its process group (a TCP store listening on
    MASTER_PORT) and its MASTER_* variables would otherwise outlive the test, and a later
    multi-process test inheriting the variables would find the port taken."""
    env = dict(os.environ)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()
    os.environ.clear()
    os.environ.update(env)


def test_gpu_check_runs_both_strategies_across_a_transition_and_resumes(tmp_path: Path) -> None:
    script = runpy.run_path(str(ROOT / "benchmarks" / "gpu_check.py"))
    out = tmp_path / "gpu_check.json"
    rows = script["main"](
        ["--size", "toy", "--steps", "2", "--work", str(tmp_path), "--out", str(out)]
    )
    assert [r["strategy"] for r in rows] == ["ddp", "fsdp"]
    for r in rows:
        assert r["stage_after_run1"] == 1 and r["lora_trained_in_stage_2"], r
        assert r["stage_after_resume"] == 2 and r["resumed_to_step"] == 6, r
        assert r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 and r["peak_memory_gib"] > 0
        assert r["mfu"] is None  # no GPU: no peak to compare with
    shards = tmp_path / "fsdp" / "checkpoints" / "last.ckpt"  # a folder of shards
    saved = dcp.FileSystemReader(str(shards)).read_metadata().state_dict_metadata
    weights = [k for k in saved if k.startswith("state_dict.")]
    trainable = ("lora_", ".downsampler.", ".layer_weights.")
    assert weights and all(any(t in k for t in trainable) for k in weights), weights
    assert json.loads(out.read_text())["runs"] == rows
