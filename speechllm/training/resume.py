"""Where a run continues from: ``resume=auto`` finds the newest checkpoint of its run folder.

A requeued cluster job is started again with the same command; with ``resume=auto`` (the
default) it continues its run instead of starting over, and a checkpoint that does not load (a
file truncated by a full disk, or written by a tool without atomic saves) is skipped with a
warning in favour of the one before. ``resume=never`` declares a new run, which is refused in a
folder that already holds checkpoints: that run's checkpoints and logs would be overwritten.
Auto is the default because requeueing repeats the command verbatim: a run that had to be told
to resume would restart from step 0 after every preemption.

A checkpoint is a file, or under ``trainer=fsdp`` a folder of shards (``meta.pt``, ``.metadata``
and each rank's ``*.distcp``): a folder loads when its ``meta.pt`` does and every shard file its
``.metadata`` names is there at full length.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import fsspec
import torch
from torch.distributed.checkpoint import FileSystemReader

from speechllm.models.folders import PARTIAL, restore_replaced
from speechllm.models.pretrained import SHARDED_META

log = logging.getLogger(__name__)

RESUME_MODES = ("auto", "never")


class RunFolderInUse(RuntimeError):
    """A new run (``resume=never``) was started in a folder that holds another run."""


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint that loads, and the optimizer step it continues from."""

    path: str
    step: int


def load_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint at ``path`` (local or fsspec URL); raises if it does not load cleanly.

    For a sharded folder this is its ``meta.pt`` (no weights: they stay in the shards, which
    are checked to be complete).
    """
    fs, root = fsspec.core.url_to_fs(str(path))
    if fs.isdir(root):
        return _sharded_checkpoint(str(path))
    with fsspec.open(path, "rb") as f:
        checkpoint = torch.load(f, map_location="cpu", weights_only=True)
    missing = {"state_dict", "global_step"} - set(checkpoint)
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (no {sorted(missing)})")
    return checkpoint


def _sharded_checkpoint(path: str) -> dict[str, Any]:
    """A sharded folder's ``meta.pt``, once its shards are known to be all there."""
    with fsspec.open(f"{path.rstrip('/')}/{SHARDED_META}", "rb") as f:
        checkpoint = torch.load(f, map_location="cpu", weights_only=True)
    if "global_step" not in checkpoint:
        raise ValueError(f"{path}: not a training checkpoint (no global_step in {SHARDED_META})")
    metadata = FileSystemReader(path).read_metadata()
    if not any(key.startswith("state_dict.") for key in metadata.state_dict_metadata):
        raise ValueError(f"{path}: the shards hold no state_dict")
    needed: dict[str, int] = {}
    for info in metadata.storage_data.values():
        end = info.offset + info.length
        needed[info.relative_path] = max(needed.get(info.relative_path, 0), end)
    fs, root = fsspec.core.url_to_fs(path)
    for name, size in needed.items():
        shard = f"{root.rstrip('/')}/{name}"
        if not fs.exists(shard) or fs.size(shard) < size:
            raise ValueError(f"{path}: shard {name} is missing or shorter than {size} bytes")
    return checkpoint


def run_checkpoints(run_dir: str) -> list[str]:
    """Every ``*.ckpt`` (file or sharded folder) under ``run_dir``, newest first (by
    modification time, then name)."""
    fs, root = fsspec.core.url_to_fs(str(run_dir))
    paths = fs.glob(f"{root.rstrip('/')}/**/*.ckpt")

    def modified(path: str) -> float:
        try:
            return fs.modified(path).timestamp()
        except (NotImplementedError, OSError):
            return 0.0

    paths.sort(key=lambda p: (modified(p), p), reverse=True)
    return [fs.unstrip_protocol(p) for p in paths] if "://" in str(run_dir) else paths


def remove_partial_files(run_dir: str) -> None:
    """Delete temporary files and folders a killed checkpoint write left (``*.ckpt.partial-*``),
    and put back a sharded folder a kill left moved aside (see ``checkpointing.py``)."""
    fs, root = fsspec.core.url_to_fs(str(run_dir))
    for path in fs.glob(f"{root.rstrip('/')}/**/*.ckpt{PARTIAL}*"):
        with contextlib.suppress(FileNotFoundError):  # another rank removed it first
            fs.rm(path, recursive=True)
    if "://" not in str(run_dir) and fs.isdir(root):
        restore_replaced(root)


def resume_point(
    run_dir: str, resume: str = "auto", ckpt_path: str | None = None
) -> ResumePoint | None:
    """The checkpoint the run in ``run_dir`` continues from, or ``None`` for a fresh start.

    Args:
        run_dir: the run folder (``paths.output_dir``); its checkpoints are searched recursively.
        resume: ``auto`` (continue from the newest checkpoint that loads) or ``never`` (a new
            run: refused if ``run_dir`` holds checkpoints).
        ckpt_path: an explicit checkpoint; it wins over both modes and must load.
    """
    if resume not in RESUME_MODES:
        raise ValueError(f"resume must be one of {RESUME_MODES}, got {resume!r}")
    remove_partial_files(run_dir)
    if ckpt_path:
        return ResumePoint(str(ckpt_path), int(load_checkpoint(str(ckpt_path))["global_step"]))
    found = run_checkpoints(run_dir)
    if not found:
        return None
    if resume == "never":
        raise RunFolderInUse(
            f"{run_dir} already holds {len(found)} checkpoint(s) (newest: {found[0]}) of "
            "another run; resume=auto continues it, or give the new run its own folder "
            "(hydra.run.dir=...)"
        )
    for path in found:
        try:
            step = int(load_checkpoint(path)["global_step"])
        except Exception as err:  # any failure to load means: not this one
            log.warning("skipping checkpoint %s: it does not load (%s)", path, err)
            continue
        log.info("resuming from %s (step %d)", path, step)
        return ResumePoint(path, step)
    raise RuntimeError(
        f"none of the {len(found)} checkpoints in {run_dir} loads; move them away to start "
        "a new run there, or pass ckpt_path=..."
    )
