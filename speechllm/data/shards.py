"""Lhotse Shar shards for corpora too large to hold as manifest lines: the layout, the index,
reading.

One folder per task, each a lhotse Shar directory plus our ``index.json``::

    shards/
      asr/  cuts.000000.jsonl.gz  recording.000000.tar  cuts.000001.jsonl.gz ...  index.json
      ic/   ...

Each cut carries one manifest line (:mod:`speechllm.data.cuts`). One folder per task (not one
mixed stream) lets the training stream multiplex tasks by weight without reading the shards of
a task it is not drawing. ``index.json`` lists the finished shards (items, seconds); the writer
is :mod:`speechllm.importers.shards` (``speechllm-data shard``).

Shards are read from a local folder or from any fsspec URL (``s3://``, ``gs://``, ``hf://``,
``https://``, with that filesystem's package installed; :mod:`speechllm.data.fsspec_io`): each
file is one sequential read.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
from fsspec.implementations.local import LocalFileSystem
from lhotse.cut import Cut
from lhotse.lazy import LazyJsonlIterator
from lhotse.shar.readers.lazy import LazySharIterator

from speechllm.data.fsspec_io import open_urls_with_fsspec

INDEX = "index.json"


@dataclass(frozen=True)
class Shard:
    """One finished shard of a task folder."""

    cuts: str
    """Path of ``cuts.NNNNNN.jsonl.gz``."""
    recording: str
    """Path of ``recording.NNNNNN.tar``."""
    items: int
    seconds: float

    @property
    def source(self) -> str:
        """Names the shard in errors: its audio tar."""
        return self.recording

    def durations(self) -> list[float]:
        """Each cut's duration, from the cut list alone (the tar is not opened)."""
        open_urls_with_fsspec(self.cuts)
        return [c["duration"] for c in LazyJsonlIterator(self.cuts)]

    def read(self) -> Iterator[Cut]:
        """The cuts in order, each holding its encoded audio."""
        open_urls_with_fsspec(self.cuts)
        return iter(LazySharIterator(fields={"cuts": [self.cuts], "recording": [self.recording]}))


def read_shards(root: str | os.PathLike) -> dict[str, list[Shard]]:
    """The finished shards of every task folder under ``root`` (a folder or an fsspec URL), by
    task name.

    Raises:
        ValueError: ``root`` holds no task folder with an ``index.json``, or an index names a
            file outside its folder (names the index).
    """
    fs, base = fsspec.core.url_to_fs(str(root))
    local = isinstance(fs, LocalFileSystem)
    found: dict[str, list[Shard]] = {}
    for index in sorted(fs.glob(posixpath.join(base, "*", INDEX))):
        folder = posixpath.dirname(index)
        shards = []
        for row in json.loads(fs.cat_file(index))["shards"]:
            for key in ("cuts", "recording"):
                name = row[key]
                if not isinstance(name, str) or name != posixpath.basename(name) or ":" in name:
                    where = index if local else fs.unstrip_protocol(index)
                    raise ValueError(f"{where}: {key} {name!r} is not a file name in its folder")
                path = posixpath.join(folder, name)
                row = {**row, key: path if local else fs.unstrip_protocol(path)}
            shards.append(Shard(**row))
        found[posixpath.basename(folder)] = shards
    found = {task: shards for task, shards in found.items() if shards}
    if not found:
        raise ValueError(f"no shards under {root}: expected <task>/{INDEX} (speechllm-data shard)")
    return found
