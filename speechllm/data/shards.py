"""Lhotse Shar shards for corpora too large to hold as manifest lines: writing and the index.

One folder per task, each a lhotse Shar directory plus our ``index.json``::

    shards/
      asr/  cuts.000000.jsonl.gz  recording.000000.tar  cuts.000001.jsonl.gz ...  index.json
      ic/   ...

A cut carries one manifest line: the target is its supervision's text, ``lang`` the
supervision's language, and ``task``, ``instruction``, ``tgt_lang``, ``labels``, ``meta`` sit in
``cut.custom``. One file per task (not one mixed stream) lets the training stream multiplex
tasks by weight without reading the shards of a task it is not drawing.

``index.json`` lists the finished shards (items, seconds). It is rewritten after every shard, so
an interrupted write resumes after the last finished shard: the input is read again in the same
order and the items already in finished shards are passed over without touching their audio.

Shards are read from a local folder or from any fsspec URL (``s3://``, ``gs://``, ``hf://``,
``https://``, with that filesystem's package installed): each file is one sequential read.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut
from lhotse.lazy import LazyJsonlIterator
from lhotse.serialization import (
    CompositeIOBackend,
    IOBackend,
    get_current_io_backend,
    get_default_io_backend,
    set_current_io_backend,
)
from lhotse.shar import SharWriter
from lhotse.shar.readers.lazy import LazySharIterator
from tqdm import tqdm

from speechllm.data.errors import AudioError, ManifestError
from speechllm.data.manifest import ManifestEntry, read_manifests
from speechllm.tasks import TASKS

INDEX = "index.json"
_FIELDS = ("instruction", "tgt_lang", "labels", "meta")  # stored in cut.custom besides task


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
        _open_urls_with_fsspec(self.cuts)
        return [c["duration"] for c in LazyJsonlIterator(self.cuts)]

    def read(self) -> Iterator[Cut]:
        """The cuts in order, each holding its encoded audio."""
        _open_urls_with_fsspec(self.cuts)
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


def _open_urls_with_fsspec(path: str) -> None:
    """Let lhotse open ``path`` through :class:`FsspecIO` if it is a URL, unless the user chose
    lhotse's IO backend (``LHOTSE_IO_BACKEND`` or ``set_current_io_backend``)."""
    if _is_url(path) and get_current_io_backend() is get_default_io_backend():
        set_current_io_backend(CompositeIOBackend([FsspecIO(), get_default_io_backend()]))


def entry_of(cut: Cut, source: str, line: int) -> ManifestEntry:
    """The manifest line a cut carries; ``source``/``line`` locate it (shard, 1-based position)."""
    custom = cut.custom or {}
    sup = cut.supervisions[0] if cut.supervisions else None
    labels = custom.get("labels")
    return ManifestEntry(
        id=cut.id,
        audio=custom.get("origin", f"{source}:{line}"),
        task=custom["task"],
        target=" ".join(s.text for s in cut.supervisions if s.text),
        duration=cut.duration,
        instruction=custom.get("instruction"),
        lang=sup.language if sup is not None else None,
        tgt_lang=custom.get("tgt_lang"),
        labels=tuple(labels) if labels is not None else None,
        meta=custom.get("meta") or {},
        source=source,
        line=line,
    )


def cut_of(recording: Recording, entry: Mapping[str, Any]) -> MonoCut:
    """A cut of ``recording`` carrying manifest fields ``entry`` (``id``, ``task``, ``target``,
    optional ``offset``, ``duration``, ``lang`` and the ``cut.custom`` fields)."""
    start = float(entry.get("offset") or 0.0)
    # a manifest's rounded duration may pass the file's end by a few samples: keep to the file,
    # as the JSONL reader does, rather than let lhotse pad
    duration = min(entry.get("duration") or math.inf, recording.duration - start)
    supervision = SupervisionSegment(
        id=entry["id"],
        recording_id=recording.id,
        start=0.0,
        duration=duration,
        text=entry["target"],
        language=entry.get("lang"),
    )
    custom = {
        "task": entry["task"],
        "origin": f"{recording.id}@{start}",  # the encoder cache's key for this audio
        **{k: entry[k] for k in _FIELDS if entry.get(k)},
    }
    return MonoCut(
        id=entry["id"],
        start=start,
        duration=duration,
        channel=0,
        recording=recording,
        supervisions=[supervision],
        custom=custom,
    )


def cuts_from_manifests(paths: Sequence[str | os.PathLike], seed: int = 0) -> Iterator[MonoCut]:
    """Cuts of validated manifest lines (a bad line raises naming file:line), shuffled with
    ``seed`` so shards mix speakers and sources (the stream then only shuffles within a pool).

    The lines are held while the cuts are made one at a time (a cut reads its file's header).
    """
    entries: list[ManifestEntry] = read_manifests(paths)
    for i in np.random.default_rng(seed).permutation(len(entries)):
        e = entries[i]
        recording = Recording.from_file(e.audio, recording_id=e.audio)
        yield cut_of(recording, {**asdict(e), "labels": e.labels})


def cuts_from_cutset(path: str | os.PathLike, task: str, lang: str | None = None) -> Iterator[Cut]:
    """A lhotse CutSet (e.g. from ``lhotse.recipes``), read lazily, as cuts of ``task``: the
    target is the supervisions' text; cuts without text are passed over."""
    _check_task(task)
    for cut in CutSet.from_file(path):
        if not any(s.text for s in cut.supervisions):
            continue
        if lang is not None:
            for sup in cut.supervisions:
                sup.language = lang
        cut.custom = {
            **(cut.custom or {}),
            "task": task,
            "origin": f"{cut.recording_id}@{cut.start}",
        }
        yield cut


def cuts_from_hf(
    rows: Iterable[Mapping[str, Any]],
    task: str,
    *,
    audio_column: str = "audio",
    target_column: str = "text",
    id_column: str | None = None,
    lang: str | None = None,
) -> Iterator[MonoCut]:
    """Rows of a Hugging Face dataset whose audio column is read with ``Audio(decode=False)``
    (encoded ``bytes`` or a ``path``); the audio is decoded while the shard is written.

    Raises:
        ManifestError: A row has an empty target (names the row's id).
    """
    _check_task(task)
    for number, row in enumerate(rows):
        utt = str(row[id_column]) if id_column else f"hf-{number:09d}"
        yield hf_cut(row, utt, task, audio_column, target_column, {"lang": lang})


def hf_cut(
    row: Mapping[str, Any],
    utt: str,
    task: str,
    audio_column: str,
    target_column: str,
    fields: Mapping[str, Any],
) -> MonoCut:
    """The cut of one Hugging Face row (audio left encoded; its header gives the duration),
    carrying manifest ``fields`` (``lang``, ``tgt_lang``, ...): the one row mapping of the shard
    writer and the streamed dataset (:mod:`speechllm.data.hf_stream`).

    Raises:
        ManifestError: The target is empty or not text (``empty_target``).
        AudioError: The row holds no audio (``empty_audio``).
        Exception: Whatever lhotse's audio backend raises on an unreadable header.
    """
    target = row[target_column]
    if not isinstance(target, str) or not target.strip():
        raise ManifestError(f"{utt}: empty or non-text {target_column!r}", reason="empty_target")
    audio = row[audio_column] or {}
    if audio.get("bytes") is None and not audio.get("path"):
        raise AudioError(f"{utt}: no audio in {audio_column!r}", reason="empty_audio")
    if audio.get("bytes") is not None:
        recording = Recording.from_bytes(audio["bytes"], recording_id=utt)
    else:
        recording = Recording.from_file(audio["path"], recording_id=utt)
    return cut_of(recording, {**fields, "id": utt, "task": task, "target": target})


def open_hf(
    source: str, split: str = "train", audio_column: str = "audio"
) -> tuple[Iterable[Mapping[str, Any]], int | None]:
    """Rows of a Hugging Face dataset (a ``save_to_disk`` folder, or a hub name streamed with
    ``streaming=True``) with the audio left encoded, and the row count when known."""
    import datasets  # heavy; only this source needs it

    if Path(source).exists():
        rows = datasets.load_from_disk(source)
        if isinstance(rows, datasets.DatasetDict):
            rows = rows[split]
    else:
        rows = datasets.load_dataset(source, split=split, streaming=True)
    rows = rows.cast_column(audio_column, datasets.Audio(decode=False))
    return rows, getattr(rows, "num_rows", None)


def write_shards(
    cuts: Iterable[Cut],
    out_dir: str | os.PathLike,
    *,
    shard_size: int = 1000,
    audio_format: str = "flac",
    total: int | None = None,
) -> dict[str, int]:
    """Write cuts (with their audio) into ``out_dir/<task>/`` Shar shards; resumable.

    Args:
        cuts: Cuts with ``custom["task"]``, in a fixed order (a resumed write reads them again).
        out_dir: Output folder.
        shard_size: Items per shard.
        audio_format: ``flac``, ``wav``, ``opus`` or ``mp3`` (lhotse's ``AudioTarWriter``).
        total: Item count for the progress bar, when known.

    Returns:
        Items per task in finished shards, resumed ones included.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    tasks: dict[str, _TaskWriter] = {}
    for cut in tqdm(cuts, total=total, desc="sharding", unit="item"):
        task = cut.custom["task"]
        if task not in tasks:
            tasks[task] = _TaskWriter(Path(out_dir) / task, shard_size, audio_format)
        tasks[task].add(cut)
    for writer in tasks.values():
        writer.flush()
    return {task: writer.written for task, writer in sorted(tasks.items())}


class _TaskWriter:
    """The shards of one task folder, resumed from its index."""

    def __init__(self, folder: Path, shard_size: int, audio_format: str) -> None:
        self.folder, self.shard_size, self.audio_format = folder, shard_size, audio_format
        folder.mkdir(parents=True, exist_ok=True)
        index = folder / INDEX
        state = json.loads(index.read_text()) if index.exists() else {"shard_size": shard_size}
        if state["shard_size"] != shard_size:
            raise ValueError(
                f"{index}: written with shard_size {state['shard_size']}, not {shard_size}; "
                "resume with the same size or write to a new folder"
            )
        self.shards: list[dict[str, Any]] = state.get("shards", [])
        self.written = sum(s["items"] for s in self.shards)
        self.seen = 0
        self.pending: list[Cut] = []

    def add(self, cut: Cut) -> None:
        self.seen += 1
        if self.seen <= self.written:
            return  # in a shard finished before the write was interrupted
        self.pending.append(cut)
        if len(self.pending) == self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        number = len(self.shards)
        with SharWriter(
            self.folder,
            fields={"recording": self.audio_format},
            shard_size=self.shard_size,
            shard_offset=number,
        ) as writer:
            for cut in self.pending:
                writer.write(cut)
        self.shards.append(
            {
                "cuts": f"cuts.{number:06d}.jsonl.gz",
                "recording": f"recording.{number:06d}.tar",
                "items": len(self.pending),
                "seconds": round(sum(c.duration for c in self.pending), 3),
            }
        )
        self.written += len(self.pending)
        self.pending = []
        tmp = self.folder / f"{INDEX}.tmp"
        tmp.write_text(json.dumps({"shard_size": self.shard_size, "shards": self.shards}, indent=1))
        os.replace(tmp, self.folder / INDEX)  # a crash leaves the old or the new index, whole


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS)}")
