"""Checkpoint files a kill cannot leave half-written, on local disk and on fsspec paths.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction: on local disk that is a
temporary file in the system temp folder moved into place, which is a copy (not a rename) when
``/tmp`` is another filesystem, so a SIGKILL during the copy leaves a truncated checkpoint under
its final name. Here the temporary file sits beside the target and is synced before a rename,
which POSIX makes atomic; object stores (S3, GCS) publish an object only once its upload is
complete, so their copy-then-delete "rename" is atomic for readers too.

A sharded FSDP checkpoint is a folder: it is written whole under a temporary name and renamed
into place (``speechllm.models.folders``, shared with exports).
"""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from speechllm.models.folders import PARTIAL


def atomic_write(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` (local or fsspec URL) so readers see all of it or none."""
    fs, target = fsspec.core.url_to_fs(str(path))
    fs.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    tmp = f"{target}{PARTIAL}{uuid.uuid4().hex[:8]}"
    try:
        if isinstance(fs, LocalFileSystem):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        else:
            fs.pipe_file(tmp, data)
            fs.mv(tmp, target)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are atomic (see the module docstring)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(buffer.getvalue(), str(path))
