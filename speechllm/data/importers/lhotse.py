"""Lhotse cut manifests (``cuts.jsonl.gz`` of ``MonoCut`` dicts), read as plain JSON so lhotse
itself is not needed. A cut becomes a segment: its recording's file, ``offset`` = cut start,
``duration`` = cut duration, target = its supervisions' texts joined by spaces."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechllm.data.manifest import write_manifest


def to_manifest(
    cuts: str | os.PathLike, out: str | os.PathLike, task: str = "asr", lang: str | None = None
) -> int:
    """Write a manifest from a lhotse cuts file.

    Args:
        cuts: ``cuts.jsonl.gz`` (or uncompressed ``.jsonl``).
        out: Output JSONL path.
        task: Task of every line (the supervision text is the target).
        lang: Language code for every line; ``None`` keeps none.

    Returns:
        The number of lines written.
    """
    return write_manifest(_records(Path(cuts), task, lang), out)


def _records(path: Path, task: str, lang: str | None) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cut = json.loads(line)
            sources = cut.get("recording", {}).get("sources", [])
            if cut.get("type", "MonoCut") != "MonoCut" or not sources:
                raise ValueError(f"{path}:{number}: expected a MonoCut with a recording")
            if sources[0]["type"] != "file":
                raise ValueError(f"{path}:{number}: only file audio sources are supported")
            text = " ".join(s["text"] for s in cut.get("supervisions", []) if s.get("text"))
            if not text:
                continue
            yield {
                "id": cut["id"],
                "audio": str(Path(sources[0]["source"]).resolve()),
                "offset": cut["start"],
                "duration": cut["duration"],
                "task": task,
                "target": text,
                **({"lang": lang} if lang else {}),
            }
