"""JSONL manifests: one utterance-task pair per line, validated with file:line errors.

A line looks like::

    {"id": "utt-1", "audio": "wavs/utt-1.flac", "duration": 2.41, "task": "asr",
     "target": "turn off the kitchen lights"}

Relative ``audio`` paths resolve against the manifest's folder, so a corpus folder can move.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from speechllm.data.audio import audio_info
from speechllm.data.errors import AudioError, DataError, ManifestError
from speechllm.tasks import TASKS, TEXT_TASK

MIN_ITEM_SECONDS = 0.025
"""Default shortest line trained on (one 25 ms encoder frame); ``speechllm-data check`` uses it."""
MAX_ITEM_SECONDS = 120.0
"""Default longest line trained on; ``speechllm-data check`` uses it."""

REQUIRED = ("id", "audio", "task", "target")
OPTIONAL = ("duration", "offset", "instruction", "lang", "tgt_lang", "labels", "meta")


@dataclass(frozen=True)
class ManifestEntry:
    """One validated manifest line; ``audio`` is an absolute path."""

    id: str
    audio: str
    task: str
    target: str
    duration: float
    offset: float = 0.0
    instruction: str | None = None
    lang: str | None = None
    tgt_lang: str | None = None
    labels: tuple[str, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    """Manifest file the entry came from."""
    line: int = 0
    """1-based line number in ``source``."""


def read_manifest(
    path: str | os.PathLike, on_error: Callable[[DataError], None] | None = None
) -> list[ManifestEntry]:
    """Read and validate one JSONL manifest.

    Args:
        path: The manifest file.
        on_error: Called with each bad line's error, which is then skipped; ``None`` raises the
            first error instead.

    Returns:
        The valid entries in file order.
    """
    return read_manifests([path], on_error)


def read_manifests(
    paths: Sequence[str | os.PathLike], on_error: Callable[[DataError], None] | None = None
) -> list[ManifestEntry]:
    """Read several manifests, rejecting ids that repeat within or across them.

    Args:
        paths: Manifest files, read in order.
        on_error: As in :func:`read_manifest`.
    """
    entries: list[ManifestEntry] = []
    first_seen: dict[str, str] = {}
    for path in paths:
        source = str(path)
        with open(path, "rb") as f:  # decoded per line, so bad UTF-8 fails at its line
            lines = (
                (number, partial(_parse_raw, raw, source, number))
                for number, raw in enumerate(f, start=1)
                if raw.strip()
            )
            entries += collect(lines, source, first_seen, on_error)
    return entries


def _parse_raw(raw: bytes, source: str, number: int) -> ManifestEntry:
    return parse_line(decode_line(raw, source, number), source, number)


class _Identified(Protocol):
    id: str


Line = TypeVar("Line", bound=_Identified)


def collect(
    lines: Iterable[tuple[int, Callable[[], Line | None]]],
    source: str,
    first_seen: dict[str, str],
    on_error: Callable[[DataError], None] | None,
) -> list[Line]:
    """One file's entries in order, each line's parser called in turn (``None``: nothing on
    that line): an id already in ``first_seen`` (id -> ``file:line``, updated) is bad, and a
    bad line raises, or goes to ``on_error`` and is skipped. Speech manifests, text items and
    text classification manifests all read through here."""
    entries = []
    for number, parse in lines:
        try:
            entry = parse()
            if entry is None:
                continue
            if entry.id in first_seen:
                raise ManifestError(
                    f"duplicate id {entry.id!r} (first at {first_seen[entry.id]})",
                    reason="duplicate_id",
                    source=source,
                    line=number,
                )
        except DataError as error:
            if on_error is None:
                raise
            on_error(error)
            continue
        first_seen[entry.id] = f"{source}:{number}"
        entries.append(entry)
    return entries


def decode_line(raw: bytes, source: str, line: int, reason: str = "malformed_json") -> str:
    """A line read as bytes, decoded as UTF-8 (so bad UTF-8 fails at its own line)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"not UTF-8: byte {raw[error.start]:#04x} at column {error.start + 1}"
        raise ManifestError(message, reason=reason, source=source, line=line) from None


def parse_line(text: str, source: str, line: int) -> ManifestEntry:
    """Validate one manifest line; raises :class:`ManifestError` naming ``source:line``."""

    def fail(message: str, reason: str) -> ManifestError:
        return ManifestError(message, reason=reason, source=source, line=line)

    record = json_object(text, fail)
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        nemo = " (a NeMo manifest? `speechllm-data import nemo IN OUT` converts it)"
        hint = nemo if "audio_filepath" in record else ""
        raise fail(f"missing required field(s) {missing}{hint}", "missing_field")
    unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise fail(f"unknown field(s) {unknown}; put free-form data under 'meta'", "bad_field")
    for key in ("id", "audio", "task", "target", "instruction", "lang", "tgt_lang"):
        if (key in REQUIRED or record.get(key) is not None) and not isinstance(record[key], str):
            raise fail(f"field {key!r} must be a string", "bad_field")
    if not record["id"]:
        raise fail("empty id", "bad_field")
    if record["task"] not in TASKS:
        raise fail(f"unknown task {record['task']!r}; known: {sorted(TASKS)}", "unknown_task")
    if record["task"] == TEXT_TASK:
        message = f"task {TEXT_TASK!r} is for text-only items: list them in data.text_manifests"
        raise fail(message, "unknown_task")
    if not record["target"].strip():
        raise fail("empty target", "empty_target")
    labels = record.get("labels")
    if labels is not None and not (
        isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)
    ):
        raise fail("'labels' must be a non-empty list of strings", "bad_field")
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise fail("'meta' must be an object", "bad_field")
    offset = _seconds(record.get("offset", 0.0), "offset", fail)
    folder = os.path.dirname(os.path.abspath(source))
    audio = os.path.normpath(os.path.join(folder, record["audio"]))
    if record.get("duration") is None:
        duration = _measure(audio, offset, fail)
    else:
        duration = _seconds(record["duration"], "duration", fail)
        if duration == 0:
            raise fail("duration is 0", "empty_audio")
    return ManifestEntry(
        id=record["id"],
        audio=audio,
        task=record["task"],
        target=record["target"],
        duration=duration,
        offset=offset,
        instruction=record.get("instruction"),
        lang=record.get("lang"),
        tgt_lang=record.get("tgt_lang"),
        labels=tuple(labels) if labels is not None else None,
        meta=meta,
        source=source,
        line=line,
    )


def json_object(text: str, fail: Callable[[str, str], ManifestError]) -> dict[str, Any]:
    """One line's JSON object, or ``fail(message, "malformed_json")`` raised."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"malformed JSON: {error.msg} at column {error.colno}"
        raise fail(message, "malformed_json") from None
    except RecursionError:  # e.g. 200k nested "[": the parser's stack, not the process's
        raise fail("malformed JSON: nested too deeply", "malformed_json") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise fail(f"malformed JSON: {error}", "malformed_json") from None
    if not isinstance(record, dict):
        raise fail("a line must be a JSON object", "malformed_json")
    return record


def _seconds(value: Any, key: str, fail: Callable[[str, str], ManifestError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"field {key!r} must be a number of seconds", "bad_field")
    try:
        seconds = float(value)  # an integer of 400 digits overflows here
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        shown = repr(value) if len(repr(value)) <= 24 else f"{repr(value)[:21]}..."
        raise fail(f"field {key!r} must be finite and >= 0, got {shown}", "bad_field")
    return seconds


def _measure(audio: str, offset: float, fail: Callable[[str, str], ManifestError]) -> float:
    """Duration from the file header, for lines that omit ``duration`` (checked as decoding
    checks it: a FIFO or an absurd rate is refused here, before anything waits on it)."""
    try:
        info = audio_info(audio)
    except AudioError as error:
        raise fail(error.message, error.reason) from None
    duration = info.seconds - offset
    if duration <= 0:
        raise fail(f"no audio after offset {offset} s in {audio}", "empty_audio")
    return duration


def limit_durations(
    entries: Iterable[ManifestEntry],
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
    too_long: str = "refuse",
    on_error: Callable[[DataError], None] | None = None,
) -> list[ManifestEntry]:
    """Entries whose audio fits the run: shorter ones and, unless cut, longer ones refused.

    Checked on the manifest, before training, because audio is read for exactly an entry's
    duration: ``max_seconds`` bounds what one item can load (samples x channels x 4 bytes), so
    a 1-hour clip cannot take a batch's memory, and ``min_seconds`` keeps out clips too short
    for the encoder to produce one frame, which would fail inside the model mid-run.

    Args:
        entries: Validated entries.
        min_seconds: Shorter entries are refused (``too_short``).
        max_seconds: Longer entries are refused (``too_long``) or cut to it; ``None``: no cap.
        too_long: ``refuse`` or ``cut`` (keep the first ``max_seconds``, for tasks whose target
            survives it, such as classification).
        on_error: As in :func:`read_manifest`.
    """
    if too_long not in ("refuse", "cut"):
        raise ValueError(f"too_long must be refuse or cut, got {too_long!r}")
    kept = []
    for entry in entries:
        where = {"source": entry.source, "line": entry.line}
        if entry.duration < min_seconds:
            error = ManifestError(
                f"{entry.duration:.4g} s is shorter than min_item_seconds={min_seconds}",
                reason="too_short",
                **where,
            )
        elif max_seconds is not None and entry.duration > max_seconds and too_long == "refuse":
            error = ManifestError(
                f"{entry.duration:.4g} s is longer than max_item_seconds={max_seconds}",
                reason="too_long",
                **where,
            )
        else:
            if max_seconds is not None and entry.duration > max_seconds:
                entry = replace(entry, duration=max_seconds)
            kept.append(entry)
            continue
        if on_error is None:
            raise error
        on_error(error)
    return kept


def write_manifest(records: Iterable[dict[str, Any]], path: str | os.PathLike) -> int:
    """Write records as JSONL, making absolute ``audio`` paths relative to the manifest folder.

    Args:
        records: Manifest records (``id``, ``audio``, ``task``, ``target`` and optional fields).
        path: Output file; its folder is created.

    Returns:
        The number of lines written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.parent.resolve()
    count = 0
    with open(out, "w", encoding="utf-8") as f:
        for record in records:
            audio = Path(record["audio"])
            if audio.is_absolute():
                record = {**record, "audio": os.path.relpath(audio, folder)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
