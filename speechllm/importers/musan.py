"""MUSAN (OpenSLR 17): ``sns`` lines, speech against music and noise, from the recordings of
lhotse's recipe (``lhotse.recipes.prepare_musan``).

Layout: ``musan/{speech,music,noise}/<source>/*.wav``, each music source with the
``ANNOTATIONS`` file the recipe reads (one ``<file stem> <genres> <vocals Y/N> <artist>`` line
per wav). Files run from seconds to minutes, so each becomes up to ``max_segments``
non-overlapping segments of ``segment_s`` seconds (``offset`` + ``duration`` lines over the one
file), clips as long as a spoken request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speechllm.data.manifest import write_manifest
from speechllm.importers.lhotse import audio_fields

if TYPE_CHECKING:
    from lhotse import RecordingSet

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
    root = Path(root)
    # lhotse's validation fails on an empty part: ask only for those with audio
    parts = [kind for kind in LABELS if next((root / kind).rglob("*.wav"), None)]
    if not parts:
        raise FileNotFoundError(f"no {{speech,music,noise}}/**/*.wav under {root}")
    if "music" in parts:
        _check_annotations(root / "music")
    from lhotse.recipes import prepare_musan  # loaded only when this importer runs

    manifests = prepare_musan(root, parts=parts)
    recordings = {kind: manifests[kind]["recordings"] for kind in parts}
    return write_manifest(_records(recordings, segment_s, max_segments), out)


def _check_annotations(music: Path) -> None:
    """Music has ``ANNOTATIONS`` and each line's file is there: lhotse's recipe fails with a
    bare ``IndexError`` or ``StopIteration`` otherwise."""
    annotations = sorted(music.rglob("ANNOTATIONS"))
    if not annotations:
        raise FileNotFoundError(f"no ANNOTATIONS file under {music} (MUSAN ships one per source)")
    stems = {wav.stem for wav in music.rglob("*.wav")}
    for path in annotations:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip() and line.split()[0] not in stems:
                raise FileNotFoundError(f"{path}:{number}: no {line.split()[0]}.wav under {music}")


def _records(
    recordings: dict[str, RecordingSet], segment_s: float, max_segments: int
) -> Iterator[dict[str, Any]]:
    for kind, found in recordings.items():
        for recording in sorted(found, key=lambda r: Path(r.sources[0].source)):  # disk order
            length = recording.duration
            count = max(1, min(max_segments, int(length // segment_s)))
            duration = round(min(segment_s, length), 3)
            for k in range(count):
                yield {
                    "id": f"musan-{kind}-{recording.id}-{k}",
                    **audio_fields(recording, round(k * segment_s, 3), duration),
                    "task": "sns",
                    "target": LABELS[kind],
                    "labels": ["speech", "non-speech"],
                    "meta": {"kind": kind},
                }
