"""A manifest line as a lhotse cut, and back: how the shards (:mod:`speechllm.data.shards`) and
the streamed Hugging Face datasets (:mod:`speechllm.data.hf_stream`) carry manifest lines.

A cut carries one manifest line: the target is its supervision's text, ``lang`` the
supervision's language, and ``task``, ``instruction``, ``tgt_lang``, ``labels``, ``meta`` sit in
``cut.custom`` (with ``origin``, the recording the encoder cache keys on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut

from speechllm.data.errors import AudioError, ManifestError
from speechllm.data.manifest import ManifestEntry

_FIELDS = ("instruction", "tgt_lang", "labels", "meta")  # stored in cut.custom besides task


def entry_of(cut: Cut, source: str, line: int) -> ManifestEntry:
    """The manifest line a cut carries; ``source``/``line`` locate it (shard, 1-based position)."""
    custom = cut.custom or {}
    sup = cut.supervisions[0] if cut.supervisions else None
    labels = custom.get("labels")
    return ManifestEntry(
        id=cut.id,
        audio=custom.get("origin", f"{source}:{line}"),
        task=custom["task"],
        target=" ".join(s.text for s in cut.supervisions if s.text),
        duration=cut.duration,
        instruction=custom.get("instruction"),
        lang=sup.language if sup is not None else None,
        tgt_lang=custom.get("tgt_lang"),
        labels=tuple(labels) if labels is not None else None,
        meta=custom.get("meta") or {},
        source=source,
        line=line,
    )


def cut_of(recording: Recording, entry: Mapping[str, Any]) -> MonoCut:
    """A cut of ``recording`` carrying manifest fields ``entry`` (``id``, ``task``, ``target``,
    optional ``offset``, ``duration``, ``lang`` and the ``cut.custom`` fields)."""
    start = float(entry.get("offset") or 0.0)
    # a manifest's rounded duration may pass the file's end by a few samples: keep to the file,
    # as the JSONL reader does, rather than let lhotse pad
    duration = min(entry.get("duration") or math.inf, recording.duration - start)
    supervision = SupervisionSegment(
        id=entry["id"],
        recording_id=recording.id,
        start=0.0,
        duration=duration,
        text=entry["target"],
        language=entry.get("lang"),
    )
    custom = {
        "task": entry["task"],
        "origin": f"{recording.id}@{start}",  # the encoder cache's key for this audio
        **{k: entry[k] for k in _FIELDS if entry.get(k)},
    }
    return MonoCut(
        id=entry["id"],
        start=start,
        duration=duration,
        channel=0,
        recording=recording,
        supervisions=[supervision],
        custom=custom,
    )


def hf_cut(
    row: Mapping[str, Any],
    utt: str,
    task: str,
    audio_column: str,
    target_column: str,
    fields: Mapping[str, Any],
) -> MonoCut:
    """The cut of one Hugging Face row (audio left encoded; its header gives the duration),
    carrying manifest ``fields`` (``lang``, ``tgt_lang``, ...): the one row mapping of the shard
    writer and the streamed dataset (:mod:`speechllm.data.hf_stream`).

    Raises:
        ManifestError: The target is empty or not text (``empty_target``).
        AudioError: The row holds no audio (``empty_audio``).
        Exception: Whatever lhotse's audio backend raises on an unreadable header.
    """
    target = row[target_column]
    if not isinstance(target, str) or not target.strip():
        raise ManifestError(f"{utt}: empty or non-text {target_column!r}", reason="empty_target")
    audio = row[audio_column] or {}
    if audio.get("bytes") is None and not audio.get("path"):
        raise AudioError(f"{utt}: no audio in {audio_column!r}", reason="empty_audio")
    if audio.get("bytes") is not None:
        recording = Recording.from_bytes(audio["bytes"], recording_id=utt)
    else:
        recording = Recording.from_file(audio["path"], recording_id=utt)
    return cut_of(recording, {**fields, "id": utt, "task": task, "target": target})
