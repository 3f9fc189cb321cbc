"""Atomic checkpoint writes and picking the checkpoint to resume from."""

from __future__ import annotations

import os
import time
from pathlib import Path

import fsspec
import pytest
import torch

from speechllm.training.checkpointing import PARTIAL, AtomicCheckpointIO
from speechllm.training.resume import RunFolderInUse, resume_point


def checkpoint(step: int) -> dict:
    return {"state_dict": {"w": torch.full((3,), float(step))}, "global_step": step}


def test_a_write_killed_before_its_rename_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpts" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(checkpoint(1), path)

    def killed(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # stands in for the kill between write and rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint(checkpoint(2), path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert os.listdir(path.parent) == ["last.ckpt"]  # the partial file was removed


def test_fsspec_paths_are_written_through_a_temporary_name() -> None:
    AtomicCheckpointIO().save_checkpoint(checkpoint(3), "memory://run/checkpoints/last.ckpt")
    fs = fsspec.filesystem("memory")
    assert fs.ls("/run/checkpoints", detail=False) == ["/run/checkpoints/last.ckpt"]
    assert resume_point("memory://run").step == 3


def test_resume_picks_the_newest_that_loads_and_clears_partial_files(tmp_path: Path) -> None:
    ckpts = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        AtomicCheckpointIO().save_checkpoint(checkpoint(step), ckpts / f"step={step}.ckpt")
        time.sleep(0.01)  # distinct modification times
    (ckpts / "step=6.ckpt").write_bytes(b"PK\x03\x04 not a whole zip")
    partial = ckpts / f"last.ckpt{PARTIAL}1234"
    partial.write_bytes(b"half")
    start = resume_point(str(tmp_path))
    assert (Path(start.path).name, start.step) == ("step=4.ckpt", 4)
    assert not partial.exists()
    with pytest.raises(RunFolderInUse, match="resume=auto continues it"):
        resume_point(str(tmp_path), resume="never")
    assert resume_point(str(tmp_path / "fresh"), resume="never") is None
