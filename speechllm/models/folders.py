"""Folders published whole: written under a temporary name beside the target, then renamed.

A sharded checkpoint (``trainer=fsdp``) and an export are folders of several files; written in
place, a kill leaves a folder that looks finished and is not (some shards new, some old, or an
export without its adapters). A rename is atomic on one filesystem, but a folder cannot be
renamed over a non-empty one, so an existing target is first moved aside::

    target.partial-<id>/  (written)  ─► target moved to target.replaced-<id> ─► tmp -> target
                                                                           └─► aside removed

A kill between the two renames leaves no target and a complete ``replaced`` folder, which
:func:`restore_replaced` puts back (a resume calls it). Both layers that write folders, models
(exports) and training (checkpoints), use this, so it lives here, the lower one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL = ".partial-"
"""Infix of temporary names (``last.ckpt.partial-<id>``): unfinished, removed on resume."""
REPLACED = ".replaced-"
"""Infix of a complete folder moved aside while its replacement is renamed into place."""


def partial_name(target: str | Path) -> Path:
    """A fresh temporary name beside ``target`` (same filesystem, so the rename is atomic)."""
    return Path(f"{target}{PARTIAL}{uuid.uuid4().hex[:8]}")


def publish_folder(tmp: str | Path, target: str | Path) -> None:
    """Rename the finished folder ``tmp`` to ``target``, replacing what is there.

    Readers see the old target or the new one, never a mix of their files.
    """
    tmp, target = Path(tmp), Path(target)
    if not target.exists() and not target.is_symlink():
        os.replace(tmp, target)
        return
    aside = Path(f"{target}{REPLACED}{uuid.uuid4().hex[:8]}")
    os.replace(target, aside)
    os.replace(tmp, target)
    remove(aside)


@contextmanager
def written_whole(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; published as ``target`` if the block
    finishes, removed if it raises."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(target)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        remove(tmp)
        raise
    publish_folder(tmp, target)


def restore_replaced(folder: str | Path) -> None:
    """Undo what a kill inside :func:`publish_folder` left under ``folder``: a moved-aside
    target whose replacement never arrived is renamed back; one that was replaced is removed."""
    for aside in sorted(Path(folder).glob(f"**/*{REPLACED}*"), reverse=True):
        target = Path(str(aside).split(REPLACED)[0])
        if target.exists():
            remove(aside)
        else:
            os.replace(aside, target)


def remove(path: str | Path) -> None:
    """Delete a file or a folder tree, if there."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
