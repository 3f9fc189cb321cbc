"""MUSAN (OpenSLR 17): ``sns`` lines, speech against music and noise.

Layout: ``musan/{speech,music,noise}/<source>/*.wav``. Files run from seconds to minutes, so
each becomes up to ``max_segments`` non-overlapping segments of ``segment_s`` seconds
(``offset`` + ``duration`` lines over the one file), clips as long as a spoken request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import soundfile as sf

from speechllm.data.manifest import write_manifest

LABELS = {"speech": "speech", "music": "non-speech", "noise": "non-speech"}


def to_manifest(
    root: str | os.PathLike,
    out: str | os.PathLike,
    segment_s: float = 4.0,
    max_segments: int = 3,
) -> int:
    """Write a MUSAN ``sns`` manifest.

    Args:
        root: The ``musan`` folder.
        out: Output JSONL path.
        segment_s: Segment length in seconds; shorter files give one whole-file line.
        max_segments: Segments per file at most.

    Returns:
        The number of lines written.
    """
    if segment_s <= 0 or max_segments < 1:
        raise ValueError("segment_s must be > 0 and max_segments >= 1")
    files = [(kind, path) for kind in LABELS for path in sorted((Path(root) / kind).rglob("*.wav"))]
    if not files:
        raise FileNotFoundError(f"no {{speech,music,noise}}/**/*.wav under {root}")
    return write_manifest(_records(files, segment_s, max_segments), out)


def _records(
    files: list[tuple[str, Path]], segment_s: float, max_segments: int
) -> Iterator[dict[str, Any]]:
    for kind, path in files:
        length = sf.info(str(path)).duration
        count = max(1, min(max_segments, int(length // segment_s)))
        for k in range(count):
            yield {
                "id": f"musan-{kind}-{path.stem}-{k}",
                "audio": str(path.resolve()),
                "offset": round(k * segment_s, 3),
                "duration": round(min(segment_s, length), 3),
                "task": "sns",
                "target": LABELS[kind],
                "labels": ["speech", "non-speech"],
                "meta": {"kind": kind},
            }
