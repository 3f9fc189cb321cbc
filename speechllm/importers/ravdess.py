"""RAVDESS speech (``Audio_Speech_Actors_01-24.zip`` from Zenodo): ``er`` lines, with ``gr``
and ``asr`` if asked.

Labels live in the file name, ``Actor_12/03-01-06-01-02-01-12.wav``: modality (03 audio-only),
vocal channel (01 speech, 02 song), emotion, intensity, statement, repetition, actor (odd male,
even female). Every actor reads the same two statements, which give the transcript.
Parsed here: lhotse has no RAVDESS recipe.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import soundfile as sf

from speechllm.data.manifest import write_manifest

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
SPEECH = "01"
"""Vocal channel of speech (``02`` is song, left out)."""


def to_manifest(
    root: str | os.PathLike,
    out: str | os.PathLike,
    tasks: Sequence[str] = ("er",),
    actors: Sequence[int] | None = None,
) -> int:
    """Write a RAVDESS manifest from the unzipped ``Actor_XX`` folders.

    Args:
        root: Folder holding ``Actor_01`` ... ``Actor_24``.
        out: Output JSONL path.
        tasks: Subset of ``er``, ``gr``, ``asr``.
        actors: Actors to include (RAVDESS has no official split: hold some out for dev);
            ``None``: all.

    Returns:
        The number of lines written.
    """
    if unknown := set(tasks) - {"er", "gr", "asr"}:
        raise ValueError(f"RAVDESS provides er, gr and asr, not {sorted(unknown)}")
    files = sorted(Path(root).glob("Actor_*/*.wav"))
    if actors is not None:
        files = [f for f in files if int(f.parent.name.removeprefix("Actor_")) in set(actors)]
    if not files:
        raise FileNotFoundError(f"no Actor_*/*.wav under {root} (of the actors asked for)")
    return write_manifest(_records(files, tasks), out)


def _records(files: list[Path], tasks: Sequence[str]) -> Iterator[dict[str, Any]]:
    for path in files:
        fields = path.stem.split("-")
        if len(fields) != 7:
            raise ValueError(f"{path}: not a RAVDESS file name (7 dash-separated codes)")
        _, channel, emotion, _, statement, _, actor = fields
        if channel != SPEECH:
            continue
        transcript = STATEMENTS[statement]
        targets = {
            "er": EMOTIONS[emotion],
            "gr": "male" if int(actor) % 2 else "female",
            "asr": transcript,
        }
        labels = {"er": list(EMOTIONS.values()), "gr": ["female", "male"]}
        duration = round(sf.info(str(path)).duration, 3)
        for task in tasks:
            yield {
                "id": f"ravdess-{path.stem}-{task}",
                "audio": str(path.resolve()),
                "duration": duration,
                "task": task,
                "target": targets[task],
                "lang": "en",
                **({"labels": labels[task]} if task in labels else {}),
                "meta": {"speaker": f"ravdess-{actor}", "transcript": transcript},
            }
