"""Tasks derived from an ASR manifest (LibriSpeech in the public SpeechVerse recipe):
keyword extraction (``kwe``) from its transcripts, speaker counting (``sc``) from mixtures of
its speakers.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from speechllm.data.audio import load_audio
from speechllm.data.manifest import ManifestEntry, read_manifest, write_manifest

COUNTS = ("one", "two", "three", "four")
SAMPLE_RATE = 16000


def keywords(transcript: str, document_frequency: Counter[str], k: int) -> list[str]:
    """The ``k`` rarest content words of ``transcript`` across the corpus (fewest transcripts
    hold them: what sets this utterance apart), in order of appearance; stop words (sklearn's
    English list) and words under three letters are never keywords."""
    words = [w for w in dict.fromkeys(transcript.split()) if w not in ENGLISH_STOP_WORDS]
    words = [w for w in words if len(w) >= 3]
    rarest = set(sorted(words, key=lambda w: (document_frequency[w], w))[:k])
    return [w for w in words if w in rarest]


def keyword_manifest(asr_manifest: str | os.PathLike, out: str | os.PathLike, k: int = 3) -> int:
    """``kwe`` lines, one per ``asr`` line with content words: its ``k`` rarest content words.

    Args:
        asr_manifest: A manifest with ``asr`` lines.
        out: Output JSONL path.
        k: Keywords per utterance at most.

    Returns:
        The number of lines written.
    """
    entries = [e for e in read_manifest(asr_manifest) if e.task == "asr"]
    frequency = Counter(w for e in entries for w in set(e.target.split()))
    return write_manifest(_keyword_lines(entries, frequency, k), out)


def _keyword_lines(
    entries: list[ManifestEntry], frequency: Counter[str], k: int
) -> Iterator[dict[str, Any]]:
    for entry in entries:
        if found := keywords(entry.target, frequency, k):
            yield {
                "id": f"{entry.id}-kwe",
                "audio": entry.audio,
                "offset": entry.offset,
                "duration": entry.duration,
                "task": "kwe",
                "target": ", ".join(found),
                "lang": entry.lang or "en",
                "meta": {**entry.meta, "transcript": entry.target},
            }


def speaker(entry: ManifestEntry) -> str:
    """``meta.speaker``, else the id's first dash field (LibriSpeech: ``84-121123-0000``)."""
    return str(entry.meta.get("speaker") or entry.id.split("-")[0])


def mixture_manifest(
    asr_manifest: str | os.PathLike,
    out: str | os.PathLike,
    audio_dir: str | os.PathLike,
    n: int,
    max_speakers: int = 3,
    seed: int = 0,
    name: str = "mix",
) -> int:
    """``sc`` lines: ``n`` clips of one to ``max_speakers`` different speakers, each next voice
    starting somewhere inside the previous one (partial overlap, as in a conversation), written
    as FLAC files. Counts are drawn uniformly, so the labels are balanced.

    Args:
        asr_manifest: A manifest whose lines name their speaker (see :func:`speaker`).
        out: Output JSONL path.
        audio_dir: Folder for the mixtures.
        n: Number of clips.
        max_speakers: Largest count, at most ``len(COUNTS)``.
        seed: Seed of the choice of utterances, counts and overlaps.
        name: Prefix of the clips' files and ids (``<name>-000000``): one per split, so the
            splits' mixtures can share ``audio_dir`` and a manifest list.

    Returns:
        The number of lines written.
    """
    if not 2 <= max_speakers <= len(COUNTS):
        raise ValueError(f"max_speakers must be in [2, {len(COUNTS)}], got {max_speakers}")
    by_speaker: dict[str, list[ManifestEntry]] = {}
    for entry in read_manifest(asr_manifest):
        by_speaker.setdefault(speaker(entry), []).append(entry)
    if len(by_speaker) < max_speakers:
        raise ValueError(f"{asr_manifest}: {len(by_speaker)} speakers, {max_speakers} needed")
    folder = Path(audio_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return write_manifest(_mixtures(by_speaker, folder, n, max_speakers, seed, name), out)


def _mixtures(
    by_speaker: dict[str, list[ManifestEntry]],
    folder: Path,
    n: int,
    max_speakers: int,
    seed: int,
    name: str,
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    names = sorted(by_speaker)
    for i in range(n):
        count = rng.randint(1, max_speakers)
        parts = [rng.choice(by_speaker[s]) for s in rng.sample(names, count)]
        mix = _mix(parts, rng)
        path = folder / f"{name}-{i:06d}.flac"
        sf.write(path, mix, SAMPLE_RATE)
        yield {
            "id": f"{name}-{i:06d}-sc",
            "audio": str(path),
            "duration": round(len(mix) / SAMPLE_RATE, 3),
            "task": "sc",
            "target": COUNTS[count - 1],
            "labels": list(COUNTS[:max_speakers]),
            "lang": "en",
            "meta": {"sources": [p.id for p in parts]},
        }


def _mix(parts: Sequence[ManifestEntry], rng: random.Random) -> np.ndarray:
    """Each utterance starts 30-90 % into the previous one; the sum is peak-normalised."""
    waves = [load_audio(p.audio, SAMPLE_RATE, p.offset, p.duration).numpy() for p in parts]
    starts = [0]
    for previous in waves[:-1]:
        starts.append(starts[-1] + int(len(previous) * rng.uniform(0.3, 0.9)))
    mix = np.zeros(max(s + len(w) for s, w in zip(starts, waves, strict=True)), np.float32)
    for start, wave in zip(starts, waves, strict=True):
        mix[start : start + len(wave)] += wave / (np.abs(wave).max() + 1e-9)
    return 0.9 * mix / np.abs(mix).max()
