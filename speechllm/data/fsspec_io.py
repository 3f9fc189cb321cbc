"""Lhotse opening URLs through fsspec, so shards can be read from ``s3://``, ``gs://``,
``hf://`` or ``https://`` (with that filesystem's package installed)."""

from __future__ import annotations

import os
from typing import Any

import fsspec
from lhotse.serialization import (
    CompositeIOBackend,
    IOBackend,
    get_current_io_backend,
    get_default_io_backend,
    set_current_io_backend,
)


class FsspecIO(IOBackend):
    """Opens URLs for lhotse through fsspec. Lhotse's own URL backend needs ``smart_open``;
    fsspec is what the rest of the stack (datasets, Lightning, our checkpoints) already uses,
    with the same credentials and caching. ``pipe:`` commands stay lhotse's."""

    def open(self, identifier: str | os.PathLike, mode: str) -> Any:
        return fsspec.open(str(identifier), mode, compression="infer").open()

    def handles_special_case(self, identifier: str | os.PathLike) -> bool:
        return _is_url(str(identifier))

    def is_applicable(self, identifier: str | os.PathLike) -> bool:
        return _is_url(str(identifier))


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("pipe:")


def open_urls_with_fsspec(path: str) -> None:
    """Let lhotse open ``path`` through :class:`FsspecIO` if it is a URL, unless the user chose
    lhotse's IO backend (``LHOTSE_IO_BACKEND`` or ``set_current_io_backend``)."""
    if _is_url(path) and get_current_io_backend() is get_default_io_backend():
        set_current_io_backend(CompositeIOBackend([FsspecIO(), get_default_io_backend()]))
