"""SLURP: ``dataset/slurp/{train,devel,test}.jsonl`` annotations and ``slurp_real/*.flac`` audio.

Each annotation line has ``sentence``, ``sentence_annotation`` (``wake me up at [time : eight
am]``), ``intent`` and ``recordings`` (``[{"file": "audio-...flac", ...}]``). Every recording
becomes one line per requested task: ``asr`` (sentence), ``ic`` (intent), ``sf`` (slots).
Recordings the annotations list but the release lacks are left out and counted in a warning.

Parsed here: lhotse has no SLURP recipe (its ``slu`` recipe is Fluent Speech Commands).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import soundfile as sf

from speechllm.data.manifest import write_manifest

log = logging.getLogger(__name__)

_SLOT = re.compile(r"\[\s*([^:\]]+?)\s*:\s*([^\]]*?)\s*\]")


def slots_target(annotation: str) -> str:
    """``sf`` target from a SLURP annotation: ``slot=value; slot=value``, lower-case values in
    order of appearance (``""`` when the sentence has no slots)."""
    return "; ".join(f"{slot}={value.lower()}" for slot, value in _SLOT.findall(annotation))


def to_manifest(
    annotations: str | os.PathLike,
    audio_dir: str | os.PathLike,
    out: str | os.PathLike,
    tasks: Sequence[str] = ("asr", "ic", "sf"),
) -> int:
    """Write a SLURP manifest.

    Args:
        annotations: A split file, e.g. ``slurp/dataset/slurp/train.jsonl``.
        audio_dir: The ``slurp_real`` folder.
        out: Output JSONL path.
        tasks: Subset of ``asr``, ``ic``, ``sf``. Sentences without slots get no ``sf`` line.

    Returns:
        The number of lines written.
    """
    unknown = set(tasks) - {"asr", "ic", "sf"}
    if unknown:
        raise ValueError(f"SLURP provides asr, ic and sf, not {sorted(unknown)}")
    return write_manifest(_records(Path(annotations), Path(audio_dir), tasks), out)


def _records(annotations: Path, audio_dir: Path, tasks: Sequence[str]) -> Iterator[dict[str, Any]]:
    missing = 0
    with open(annotations, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            targets = {
                "asr": row["sentence"].lower(),
                "ic": row["intent"],
                "sf": slots_target(row["sentence_annotation"]),
            }
            for recording in row["recordings"]:
                audio = (audio_dir / recording["file"]).resolve()
                if not audio.exists():
                    missing += 1  # SLURP lists a few recordings that were never released
                    continue
                duration = round(sf.info(str(audio)).duration, 3)
                stem = audio.stem
                for task in tasks:
                    if targets[task]:
                        yield {
                            "id": f"slurp-{row['slurp_id']}-{stem}-{task}",
                            "audio": str(audio),
                            "duration": duration,
                            "task": task,
                            "target": targets[task],
                            "lang": "en",
                        }
    if missing:
        log.warning("%s: %d listed recordings not in %s, left out", annotations, missing, audio_dir)
