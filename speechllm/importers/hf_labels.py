"""Labelled Hugging Face corpora of the public SpeechVerse recipe: Speech Commands (``kws``)
and SLUE-VoxCeleb (``asc``). Each maps its own columns; audio is copied by
:func:`~speechllm.importers.hf_datasets.audio_file` without decoding (decoding would need
torchcodec, and a copy does not).

Load with ``datasets.load_from_disk`` (or ``load_dataset``) and pass one split.

Why Hugging Face and not lhotse for Speech Commands: lhotse's ``prepare_speechcommands`` reads
the TensorFlow tarballs (a second download, unpacked) and scans all three splits at each call;
the Hub copy the recipe documents loads one split at a time with the word as a ``ClassLabel``,
which is what this importer reads. A second reader of the same corpus would be a copy.
SLUE-VoxCeleb's sentiment has no lhotse recipe (lhotse's ``voxceleb`` is speaker
identification).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechllm.data.manifest import write_manifest
from speechllm.importers.hf_datasets import audio_file

SILENCE = "_silence_"
"""Speech Commands' background-noise class: no word, so no keyword question."""
SENTIMENTS = {"Negative": "negative", "Neutral": "neutral", "Positive": "positive"}
"""SLUE-VoxCeleb's sentiment values -> ``asc`` labels; ``<mixed>`` lines are left out (SLUE
scores only these three)."""


def _undecoded(dataset: Any) -> Any:
    from datasets import Audio

    return dataset.cast_column("audio", Audio(decode=False))


def speech_commands(
    dataset: Any, out: str | os.PathLike, audio_dir: str | os.PathLike, seed: int = 0
) -> int:
    """``kws`` lines from Speech Commands (``google/speech_commands``, ``v0.02``): "is
    ``meta.keyword`` said?", alternately the clip's own word (``yes``) and another word of the
    vocabulary (``no``), so answers are balanced; ``meta.transcript`` is the word.

    Args:
        dataset: One split, columns ``file``, ``audio``, ``label`` (a ``ClassLabel``),
            ``speaker_id``.
        out: Output JSONL path.
        audio_dir: Folder for the copied FLAC files.
        seed: Seed of the ``no`` keywords.

    Returns:
        The number of lines written.
    """
    names = dataset.features["label"].names
    folder = Path(audio_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return write_manifest(_commands(_undecoded(dataset), names, folder, seed), out)


def _commands(rows: Any, names: list[str], folder: Path, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    words = [name for name in names if name != SILENCE]
    ask_own = True
    for row in rows:
        word = names[row["label"]]
        if word == SILENCE:
            continue
        utt = "speech_commands-" + Path(row["file"]).with_suffix("").as_posix().replace("/", "-")
        path, duration = audio_file(row["audio"], folder, utt)
        keyword = word if ask_own else rng.choice([w for w in words if w != word])
        yield {
            "id": utt,
            "audio": str(path),
            "duration": round(duration, 3),
            "task": "kws",
            "target": "yes" if ask_own else "no",
            "labels": ["yes", "no"],
            "lang": "en",
            "meta": {"keyword": keyword, "transcript": word, "speaker": row["speaker_id"]},
        }
        ask_own = not ask_own


def slue_voxceleb(
    dataset: Any,
    out: str | os.PathLike,
    audio_dir: str | os.PathLike,
    tasks: tuple[str, ...] = ("asc", "asr"),
) -> int:
    """``asc`` (and ``asr``) lines from SLUE-VoxCeleb (``asapp/slue``, config ``voxceleb``).

    Args:
        dataset: One split, columns ``id``, ``audio``, ``speaker_id``, ``normalized_text``,
            ``sentiment`` (``Negative``, ``Neutral``, ``Positive`` or ``<mixed>``).
        out: Output JSONL path.
        audio_dir: Folder for the copied FLAC files.
        tasks: Subset of ``asc`` and ``asr``.

    Returns:
        The number of lines written.
    """
    if unknown := set(tasks) - {"asc", "asr"}:
        raise ValueError(f"SLUE-VoxCeleb provides asc and asr, not {sorted(unknown)}")
    folder = Path(audio_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return write_manifest(_voxceleb(_undecoded(dataset), folder, tasks), out)


def _voxceleb(rows: Any, folder: Path, tasks: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for row in rows:
        if row["sentiment"] not in SENTIMENTS:
            continue
        utt = f"slue_voxceleb-{row['id']}"
        path, duration = audio_file(row["audio"], folder, utt)
        text = row["normalized_text"].strip()
        targets = {"asc": SENTIMENTS[row["sentiment"]], "asr": text}
        for task in (t for t in tasks if targets[t]):
            yield {
                "id": f"{utt}-{task}",
                "audio": str(path),
                "duration": round(duration, 3),
                "task": task,
                "target": targets[task],
                "lang": "en",
                **({"labels": sorted(SENTIMENTS.values())} if task == "asc" else {}),
                "meta": {"speaker": row["speaker_id"], "transcript": text},
            }
