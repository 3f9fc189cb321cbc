"""LibriSpeech: ``<root>/<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` plus one
``<spk>-<chapter>.trans.txt`` per chapter with ``<utt-id> <TRANSCRIPT>`` lines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import soundfile as sf

from speechllm.data.manifest import write_manifest


def to_manifest(root: str | os.PathLike, split: str, out: str | os.PathLike) -> int:
    """Write an ``asr`` manifest of one LibriSpeech split with lower-cased transcripts.

    Args:
        root: Folder holding the split folders (``LibriSpeech/``).
        split: Split folder name, e.g. ``train-clean-100``.
        out: Output JSONL path.

    Returns:
        The number of lines written.
    """
    folder = Path(root) / split
    if not folder.is_dir():
        raise ValueError(f"LibriSpeech split folder not found: {folder}")
    return write_manifest(_records(folder), out)


def _records(folder: Path) -> Iterator[dict[str, Any]]:
    for transcript in sorted(folder.glob("*/*/*.trans.txt")):
        for line in transcript.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            utt, text = line.split(" ", 1)
            audio = (transcript.parent / f"{utt}.flac").resolve()
            yield {
                "id": utt,
                "audio": str(audio),
                "duration": round(sf.info(str(audio)).duration, 3),
                "task": "asr",
                "target": text.strip().lower(),
                "lang": "en",
                "meta": {"speaker": utt.split("-")[0]},
            }
