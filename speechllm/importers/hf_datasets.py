"""Hugging Face ``datasets`` (or any iterable of dicts) with an ``audio`` column.

The audio column may hold decoded arrays (``{"array", "sampling_rate"}``), raw ``bytes`` or just a
``path``; arrays and bytes are written to FLAC files so the manifest owns its audio. A dataset's
``Audio`` column is read undecoded (``Audio(decode=False)``): ``datasets`` decodes through
``torchcodec``, which speechllm does not need, and soundfile reads the bytes as well.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from speechllm.data.manifest import write_manifest


def to_manifest(
    rows: Iterable[Mapping[str, Any]],
    out: str | os.PathLike,
    audio_dir: str | os.PathLike,
    *,
    task: str = "asr",
    target_column: str = "text",
    audio_column: str = "audio",
    id_column: str | None = None,
    id_prefix: str = "hf",
    fields: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> int:
    """Write a manifest (and FLAC files) from dataset rows.

    Args:
        rows: A ``datasets.Dataset`` / ``IterableDataset`` (its audio column is read undecoded)
            or any iterable of dicts.
        out: Output JSONL path.
        audio_dir: Folder for the written FLAC files.
        task: Task of every line.
        target_column: Column holding the target text.
        audio_column: Column holding the audio.
        id_column: Column holding utterance ids; ``None`` numbers the rows.
        id_prefix: Prefix of numbered ids.
        fields: Further manifest fields of every line (``lang``, ``tgt_lang``, ``labels``...).
        limit: Write only the first ``limit`` rows.

    Returns:
        The number of lines written.
    """
    folder = Path(audio_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    rows = itertools.islice(undecoded(rows, audio_column), limit)
    records = _records(rows, folder, task, target_column, audio_column, id_column, id_prefix)
    return write_manifest(({**record, **(fields or {})} for record in records), out)


def undecoded(rows: Iterable[Mapping[str, Any]], audio_column: str = "audio") -> Iterable[Any]:
    """``rows`` with a ``datasets`` ``Audio`` column cast to ``Audio(decode=False)``; any other
    iterable as it is."""
    features = getattr(rows, "features", None)
    if not features or audio_column not in features or not hasattr(rows, "cast_column"):
        return rows
    import datasets  # only a datasets object gets here

    if isinstance(features[audio_column], datasets.Audio):
        return rows.cast_column(audio_column, datasets.Audio(decode=False))
    return rows


def load_rows(
    dataset: str, split: str = "train", config: str | None = None, audio_column: str = "audio"
) -> Iterable[Mapping[str, Any]]:
    """Rows of a ``save_to_disk`` folder, or of a Hub dataset streamed (nothing is cached beyond
    what is read), with the audio undecoded.

    Args:
        dataset: A ``Dataset.save_to_disk`` folder, or a Hub dataset id.
        split: Split of a ``DatasetDict`` folder or of the Hub dataset.
        config: The Hub dataset's configuration (``name``), e.g. a language.
        audio_column: Column holding the audio.
    """
    import datasets  # heavy; only this importer needs it

    if Path(dataset).exists():
        rows = datasets.load_from_disk(dataset)
        if isinstance(rows, datasets.DatasetDict):
            rows = rows[split]
    else:
        rows = datasets.load_dataset(dataset, config, split=split, streaming=True)
    return undecoded(rows, audio_column)


def audio_file(audio: Mapping[str, Any], folder: Path, utt: str) -> tuple[Path, float]:
    """The file and duration of one row's ``audio`` cell: its own ``path`` when it holds no
    samples, else ``folder/<utt>.flac`` written from its array or bytes.

    Shared by every Hugging Face importer (:mod:`.hf_labels` too), so each corpus only maps
    its own columns.
    """
    if audio.get("array") is None and audio.get("bytes") is None:
        path = Path(audio["path"]).resolve()
        return path, sf.info(str(path)).duration
    if audio.get("array") is not None:
        data, rate = np.asarray(audio["array"], np.float32), int(audio["sampling_rate"])
    else:
        data, rate = sf.read(io.BytesIO(audio["bytes"]), dtype="float32")
    path = folder / f"{utt}.flac"
    sf.write(path, data, rate)
    return path, len(data) / rate


def _records(
    rows: Iterable[Mapping[str, Any]],
    folder: Path,
    task: str,
    target_column: str,
    audio_column: str,
    id_column: str | None,
    id_prefix: str,
) -> Iterator[dict[str, Any]]:
    for number, row in enumerate(rows):
        utt = str(row[id_column]) if id_column else f"{id_prefix}-{number:08d}"
        path, duration = audio_file(row[audio_column], folder, utt)
        yield {
            "id": utt,
            "audio": str(path),
            "duration": round(duration, 3),
            "task": task,
            "target": row[target_column],
        }
