"""Atomic checkpoint writes and picking the checkpoint to resume from."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import fsspec
import pytest
import torch
import torch.distributed.checkpoint as dcp

from speechllm.training.checkpointing import PARTIAL, AtomicCheckpointIO
from speechllm.training.resume import ResumePoint, RunFolderInUse, resume_point


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


def test_resume_auto_finds_sharded_folders_and_skips_an_incomplete_one(tmp_path, caplog) -> None:
    """``trainer=fsdp`` checkpoints are folders: they were opened as files ("none of the
    checkpoints loads"), so a requeued FSDP run could not continue."""
    ckpts = tmp_path / "checkpoints"
    for step, name in ((3, "step=3.ckpt"), (6, "last.ckpt")):
        folder = ckpts / name
        dcp.save({"state_dict": {"w": torch.full((4,), float(step))}}, checkpoint_id=folder)
        torch.save({"global_step": step}, folder / "meta.pt")
        time.sleep(0.01)  # last.ckpt newest
    assert resume_point(str(tmp_path)) == ResumePoint(str(ckpts / "last.ckpt"), 6)
    shard = next((ckpts / "last.ckpt").glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:10])  # a shard cut short
    with caplog.at_level(logging.WARNING, logger="speechllm.training.resume"):
        assert resume_point(str(tmp_path)) == ResumePoint(str(ckpts / "step=3.ckpt"), 3)
    assert "shorter than" in caplog.text
    partial = ckpts / f"last.ckpt{PARTIAL}abcd"  # a sharded save killed before its rename
    partial.mkdir()
    (partial / "meta.pt").write_bytes(b"")
    resume_point(str(tmp_path))
    assert not partial.exists()
