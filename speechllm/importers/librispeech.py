"""LibriSpeech (``<root>/<split>/<spk>/<chapter>/*.flac`` + ``*.trans.txt``), parsed by lhotse's
recipe (``lhotse.recipes.prepare_librispeech``) rather than by hand."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speechllm.data.manifest import write_manifest
from speechllm.importers.lhotse import audio_fields, supervised

if TYPE_CHECKING:
    from lhotse import RecordingSet, SupervisionSet


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
    from lhotse.recipes import prepare_librispeech  # loaded only when this importer runs

    parts = prepare_librispeech(root, dataset_parts=[split], normalize_text="lower")
    return write_manifest(_records(parts[split]["recordings"], parts[split]["supervisions"]), out)


def _records(recordings: RecordingSet, supervisions: SupervisionSet) -> Iterator[dict[str, Any]]:
    for sup, recording in supervised(recordings, supervisions):
        yield {
            "id": sup.id,
            **audio_fields(recording),
            "task": "asr",
            "target": sup.text,
            "lang": "en",
            "meta": {"speaker": sup.speaker},
        }
