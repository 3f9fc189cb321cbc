"""Corpora written as lhotse Shar shards (``speechllm-data shard``): cuts from JSONL manifests, a
lhotse CutSet or a Hugging Face dataset, and the resumable writer of the folders
:mod:`speechllm.data.shards` reads.

``index.json`` is rewritten after every shard, so an interrupted write resumes after the last
finished shard: the input is read again in the same order and the items already in finished
shards are passed over without touching their audio.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from lhotse import CutSet, MonoCut, Recording
from lhotse.cut import Cut
from lhotse.shar import SharWriter
from tqdm import tqdm

from speechllm.data.cuts import cut_of, hf_cut
from speechllm.data.manifest import ManifestEntry, read_manifests
from speechllm.data.shards import INDEX
from speechllm.tasks import TASKS


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
