"""lhotse manifests -> our manifest lines, in one place: cut manifests (``cuts.jsonl.gz``), and
the ``RecordingSet``/``SupervisionSet`` pairs that ``lhotse.recipes.prepare_*`` return, which
the corpus importers (LibriSpeech, L2-ARCTIC, MUSAN) read instead of parsing the corpus.

A line names one audio file, so a recording must be one ``file`` source (no URL, no in-memory
audio, no multi-file channels). lhotse itself is imported only when an importer runs: it loads
torch, which ``speechllm-data --help`` should not wait for.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speechllm.data.manifest import write_manifest

if TYPE_CHECKING:
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet


def audio_fields(
    recording: Recording, offset: float | None = None, duration: float | None = None
) -> dict[str, Any]:
    """A line's ``audio``, ``offset`` and ``duration`` over a lhotse recording.

    Args:
        recording: A recording of one ``file`` source; its path is resolved.
        offset: Start of the line's stretch in seconds; ``None``: the whole file, and no
            ``offset`` field (the manifest's default is 0).
        duration: Length of the stretch; ``None``: the recording's, rounded to the millisecond.

    Raises:
        ValueError: naming the recording, when it is not one audio file.
    """
    kinds = [source.type for source in recording.sources]
    if kinds != ["file"]:
        raise ValueError(f"recording {recording.id}: one file source needed, not {kinds}")
    fields: dict[str, Any] = {"audio": str(Path(recording.sources[0].source).resolve())}
    if offset is not None:
        fields["offset"] = offset
    fields["duration"] = round(recording.duration, 3) if duration is None else duration
    return fields


def supervised(
    recordings: RecordingSet, supervisions: SupervisionSet
) -> Iterator[tuple[SupervisionSegment, Recording]]:
    """Each supervision of a recipe's output, in id order, with its recording (found in a dict:
    ``RecordingSet[id]`` scans the set, which is quadratic over a corpus)."""
    by_id = {recording.id: recording for recording in recordings}
    for supervision in sorted(supervisions, key=lambda s: s.id):
        yield supervision, by_id[supervision.recording_id]


def to_manifest(
    cuts: str | os.PathLike, out: str | os.PathLike, task: str = "asr", lang: str | None = None
) -> int:
    """Write a manifest from a lhotse cuts file: a cut becomes a stretch of its recording's file
    (``offset`` = cut start), its target its supervisions' texts joined by spaces.

    Any corpus a ``lhotse.recipes.prepare_*`` function prepares comes in this way:
    ``CutSet.from_manifests(**parts["train"]).to_file("cuts.jsonl.gz")``.

    Args:
        cuts: ``cuts.jsonl.gz`` (or uncompressed ``.jsonl``) of ``MonoCut``\\ s.
        out: Output JSONL path.
        task: Task of every line (the supervision text is the target).
        lang: Language code for every line; ``None`` keeps none.

    Returns:
        The number of lines written.
    """
    return write_manifest(_records(Path(cuts), task, lang), out)


def _records(path: Path, task: str, lang: str | None) -> Iterator[dict[str, Any]]:
    from lhotse import MonoCut
    from lhotse.serialization import deserialize_item

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cut = deserialize_item(json.loads(line))
            if not isinstance(cut, MonoCut) or not cut.has_recording:
                raise ValueError(f"{path}:{number}: expected a MonoCut with a recording")
            text = " ".join(s.text for s in cut.supervisions if s.text)
            if not text:
                continue
            try:
                audio = audio_fields(cut.recording, cut.start, cut.duration)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: {error}") from None
            yield {
                "id": cut.id,
                **audio,
                "task": task,
                "target": text,
                **({"lang": lang} if lang else {}),
            }
