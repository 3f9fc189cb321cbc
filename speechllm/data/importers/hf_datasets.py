"""Hugging Face ``datasets`` (or any iterable of dicts) with an ``audio`` column.

The audio column may hold decoded arrays (``{"array", "sampling_rate"}``), raw ``bytes`` or just a
``path``; arrays and bytes are written to FLAC files so the manifest owns its audio.
"""

from __future__ import annotations

import io
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
    id_column: str | None = None,
    id_prefix: str = "hf",
    fields: Mapping[str, Any] | None = None,
) -> int:
    """Write a manifest (and FLAC files) from dataset rows.

    Args:
        rows: A ``datasets.Dataset`` or any iterable of dicts.
        out: Output JSONL path.
        audio_dir: Folder for the written FLAC files.
        task: Task of every line.
        target_column: Column holding the target text.
        id_column: Column holding utterance ids; ``None`` numbers the rows.
        id_prefix: Prefix of numbered ids.
        fields: Further manifest fields of every line (``lang``, ``tgt_lang``, ``labels``...).

    Returns:
        The number of lines written.
    """
    folder = Path(audio_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    records = _records(rows, folder, task, target_column, id_column, id_prefix)
    return write_manifest(({**record, **(fields or {})} for record in records), out)


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
    id_column: str | None,
    id_prefix: str,
) -> Iterator[dict[str, Any]]:
    for number, row in enumerate(rows):
        utt = str(row[id_column]) if id_column else f"{id_prefix}-{number:08d}"
        path, duration = audio_file(row["audio"], folder, utt)
        yield {
            "id": utt,
            "audio": str(path),
            "duration": round(duration, 3),
            "task": task,
            "target": row[target_column],
        }
