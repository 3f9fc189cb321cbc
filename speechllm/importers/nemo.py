"""NeMo-style manifests (``audio_filepath``, ``text``, ``duration``, optional ``offset`` and
``lang``) -> our manifest lines, one task for every line.

NeMo resolves a relative ``audio_filepath`` against the manifest's folder, and so does this:
the written manifest points at the same files, wherever it is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechllm.data.errors import ManifestError
from speechllm.data.manifest import write_manifest


def to_manifest(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    task: str = "asr",
    *,
    text_field: str = "text",
    id_prefix: str | None = None,
) -> int:
    """Convert a NeMo manifest.

    Args:
        manifest: NeMo JSONL (one object per line).
        out: Output JSONL path.
        task: Task of every line.
        text_field: NeMo field holding the target (``text``; ``answer`` in Canary-style ones).
        id_prefix: Prefix of the line ids (``<prefix>-<line>``); default: the file's stem.

    Returns:
        The number of lines written.

    Raises:
        ManifestError: naming the file and line of a line without audio or target.
    """
    return write_manifest(_records(Path(manifest), task, text_field, id_prefix), out)


def _records(
    path: Path, task: str, text_field: str, id_prefix: str | None
) -> Iterator[dict[str, Any]]:
    prefix = id_prefix or path.name.removesuffix(".json").removesuffix(".jsonl")
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as error:
                raise _error(
                    f"malformed JSON: {error.msg}", "malformed_json", path, number
                ) from None
            missing = [k for k in ("audio_filepath", text_field) if k not in row]
            if missing:
                raise _error(f"NeMo line without {missing}", "missing_field", path, number)
            audio = Path(row["audio_filepath"])
            record: dict[str, Any] = {
                "id": f"{prefix}-{number:08d}",
                "audio": str(audio if audio.is_absolute() else (path.parent / audio).resolve()),
                "task": task,
                "target": str(row[text_field]),
            }
            for key in ("duration", "offset", "lang"):
                if row.get(key) is not None:
                    record[key] = row[key]
            yield record


def _error(message: str, reason: str, path: Path, line: int) -> ManifestError:
    return ManifestError(message, reason=reason, source=str(path), line=line)
