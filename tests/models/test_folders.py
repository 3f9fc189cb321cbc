"""Folders published whole (sharded checkpoints, exports): a kill leaves the old one or the
new one, never a mix; a second export replaces the first instead of writing into it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import speechllm.models.pretrained as pretrained
from speechllm.models import SpeechLLM
from speechllm.models.folders import (
    PARTIAL,
    REPLACED,
    publish_folder,
    restore_replaced,
    written_whole,
)
from speechllm.models.tiny import TINY_EXPORT_NODE, save_tiny_export


def test_publish_replaces_a_folder_and_a_kill_between_renames_is_undone(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    target.mkdir()
    (target / "old").write_text("old")
    with written_whole(target) as tmp:
        assert tmp.name.startswith(f"last.ckpt{PARTIAL}") and not (tmp / "old").exists()
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert [p.name for p in target.iterdir()] == ["new"]
    # killed after the target was moved aside, before the new folder was renamed in
    aside = tmp_path / f"last.ckpt{REPLACED}1234"
    os.replace(target, aside)
    restore_replaced(tmp_path)
    assert [p.name for p in target.iterdir()] == ["new"] and not aside.exists()
    # killed after both renames, before the old one was removed
    aside.mkdir()
    restore_replaced(tmp_path)
    assert not aside.exists() and (target / "new").exists()


def test_a_failed_write_leaves_the_previous_folder_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError), written_whole(target) as tmp:
        (tmp / "half").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["old"]
    publish_folder(tmp_path / "out", tmp_path / "moved")  # to a new name: a plain rename
    assert (tmp_path / "moved" / "old").exists()


def test_an_export_is_written_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was written in place: a failure (a kill) mid-export left a folder that looked done."""
    out = save_tiny_export(tmp_path / "export")
    first = (out / "trainable.safetensors").read_bytes()

    def killed(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    model = SpeechLLM.from_pretrained(out)
    (out / "adapters" / "stale").mkdir()  # left by an earlier export: replaced, not merged
    with monkeypatch.context() as patch:
        patch.setattr(pretrained, "model_card", killed)
        with pytest.raises(KeyboardInterrupt):
            model.save_pretrained(tmp_path / "fresh", TINY_EXPORT_NODE)
        with pytest.raises(KeyboardInterrupt):
            model.save_pretrained(out, TINY_EXPORT_NODE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # nothing half-written
    assert (out / "trainable.safetensors").read_bytes() == first
    with torch.no_grad():
        for p in model.downsampler.parameters():
            p.add_(1.0)
    model.save_pretrained(out, TINY_EXPORT_NODE)
    assert not (out / "adapters" / "stale").exists()
    assert (out / "trainable.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_an_export_refuses_to_replace_a_folder_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    model = SpeechLLM.from_pretrained(save_tiny_export(tmp_path / "export"))
    with pytest.raises(FileExistsError, match="not an export"):
        model.save_pretrained(tmp_path, TINY_EXPORT_NODE)
    assert (tmp_path / "notes.txt").read_text() == "mine"
