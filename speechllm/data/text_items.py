"""Text-only training items (``data.text_manifests``): instruction/answer pairs, or any text
corpus to continue, mixed into training by weight as the task ``text``.

Two formats, told apart by the file's suffix::

    pairs.jsonl   {"id": "q-1", "instruction": "Name a prime.", "target": "Seven."}
                  (``id`` optional; both texts non-empty; no other keys)
    corpus.txt    every non-empty line is one item: instruction "", target the line

Ids default to ``<file stem>-<line>`` and must not repeat any other id, speech manifests'
included. Each item is a :class:`~speechllm.data.manifest.ManifestEntry` with task ``text``,
``audio=""`` and an estimated duration (:func:`text_seconds`), so the duration buckets,
``max_batch_seconds`` and the hours-based default mixture treat it as an utterance of that
length; in a batch it is a row with ``audio_lengths == 0`` and no audio read
(docs/architecture.md). Only training reads them: validation never holds text items.

The cost is bounded before the work: a file must be a regular file of at most
:data:`MAX_TEXT_FILE_BYTES` (every item is held in memory), and a line is read in at most a
bounded number of bytes, so one overlong line is refused (``too_long``) without being held.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

from speechllm.data.errors import DataError, ManifestError
from speechllm.data.manifest import ManifestEntry, collect, decode_line, json_object
from speechllm.tasks import TEXT_TASK

CHARS_PER_SECOND = 15.0
"""Characters per second of the duration estimate: roughly speaking rate (about 150 words a
minute), so a text item batches like an utterance of its text read aloud."""
MIN_TEXT_SECONDS = 1.0
"""Floor of the estimate: a row costs its prompt's tokens however short its text, so a corpus
of short lines does not pack thousands of rows into one batch."""
MAX_TEXT_CHARS = 8192
"""Default longest item, instruction and target together, in characters (about 9 minutes at
:data:`CHARS_PER_SECOND`); longer items are bad (``too_long``)."""
MAX_TEXT_FILE_BYTES = 256 * 2**20
"""Largest text file read (every item stays in memory in every process); split or sample a
larger corpus."""
FORMATS = (".jsonl", ".txt")
"""Suffixes read: instruction/answer pairs, and one continuation per line."""

_FIELDS = {"id", "instruction", "target"}


def text_seconds(instruction: str, target: str) -> float:
    """The estimated duration of a text item: its characters at :data:`CHARS_PER_SECOND`,
    at least :data:`MIN_TEXT_SECONDS`."""
    return max((len(instruction) + len(target)) / CHARS_PER_SECOND, MIN_TEXT_SECONDS)


def check_text_format(path: str | os.PathLike) -> None:
    """Refuse a text manifest whose suffix is not one of :data:`FORMATS` (before any read)."""
    if Path(path).suffix not in FORMATS:
        raise ValueError(
            f"{path}: a text manifest is .jsonl (instruction/answer pairs) or .txt (one "
            "continuation per line)"
        )


def read_text_items(
    paths: Sequence[str | os.PathLike],
    on_error: Callable[[DataError], None] | None = None,
    taken: Mapping[str, str] | None = None,
    max_chars: int = MAX_TEXT_CHARS,
) -> list[ManifestEntry]:
    """Read text-only items from ``.jsonl`` and ``.txt`` files, errors naming file and line.

    Args:
        paths: Text manifests, read in order.
        on_error: Called with each bad line's error, which is then skipped (as
            :func:`~speechllm.data.manifest.read_manifests`); ``None`` raises the first.
        taken: Ids already used (id -> ``file:line``), e.g. the speech manifests'; a text item
            repeating one is bad (``duplicate_id``), as is one repeating another text item's.
        max_chars: Longest item (instruction and target together) in characters.

    Returns:
        The valid items in file order, task ``text``, ``audio=""``.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    first_seen = dict(taken or {})
    entries: list[ManifestEntry] = []
    for path in paths:
        check_text_format(path)
        source = str(path)
        check_text_file(source)
        pairs = source.endswith(".jsonl")
        with open(path, "rb") as f:
            lines = (
                (number, partial(_item, raw, source, number, pairs, max_chars))
                for number, raw in bounded_lines(f, max_line_bytes(max_chars))
            )
            entries += collect(lines, source, first_seen, on_error)
    return entries


def check_text_file(path: str) -> None:
    """Refuse a path that is not a regular file of at most :data:`MAX_TEXT_FILE_BYTES`."""
    info = os.stat(path)  # a missing file raises FileNotFoundError, naming it
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: a text manifest must be a regular file")
    if info.st_size > MAX_TEXT_FILE_BYTES:
        raise ValueError(
            f"{path}: {info.st_size} bytes, more than the {MAX_TEXT_FILE_BYTES} a text manifest "
            "may hold (every item stays in memory); split or sample it"
        )


def max_line_bytes(max_chars: int) -> int:
    """Bytes a line of ``max_chars`` characters may take: JSON writes a character in at most
    12 bytes (a ``\\ud83d\\ude00`` pair), plus the keys and the id."""
    return 12 * max_chars + 4096


def bounded_lines(f: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, raw line)``, 1-based; ``None`` for a line over ``max_bytes``, whose rest
    is read past in bounded chunks, never held whole."""
    number = 0
    while raw := f.readline(max_bytes + 1):
        number += 1
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = f.readline(2**20)
            yield number, None
        else:
            yield number, raw


def _item(
    raw: bytes | None, source: str, number: int, pairs: bool, max_chars: int
) -> ManifestEntry | None:
    """One line's item; ``None`` for a blank line."""

    def fail(message: str, reason: str) -> ManifestError:
        return ManifestError(message, reason=reason, source=source, line=number)

    if raw is None:
        raise fail(f"line longer than {max_line_bytes(max_chars)} bytes", "too_long")
    text = decode_line(raw, source, number, "malformed_json" if pairs else "malformed_text")
    if not text.strip():
        return None
    item_id = f"{Path(source).stem}-{number}"
    if pairs:
        record = json_object(text, fail)
        missing = sorted({"instruction", "target"} - set(record))
        if missing:
            raise fail(f"missing required field(s) {missing}", "missing_field")
        unknown = sorted(set(record) - _FIELDS)
        if unknown:
            raise fail(
                f"unknown field(s) {unknown}; a text item has {sorted(_FIELDS)}", "bad_field"
            )
        for key in sorted(set(record) & _FIELDS):
            if not isinstance(record[key], str):
                raise fail(f"field {key!r} must be a string", "bad_field")
        if "id" in record and not record["id"]:
            raise fail("empty id", "bad_field")
        if not record["instruction"].strip():
            raise fail("empty instruction (continuations go in a .txt file)", "bad_field")
        if not record["target"].strip():
            raise fail("empty target", "empty_target")
        item_id = record.get("id", item_id)
        instruction, target = record["instruction"], record["target"]
    else:
        instruction, target = "", text.strip()
    chars = len(instruction) + len(target)
    if chars > max_chars:
        raise fail(f"{chars} characters, more than max_text_chars={max_chars}", "too_long")
    return ManifestEntry(
        id=item_id,
        audio="",
        task=TEXT_TASK,
        target=target,
        duration=text_seconds(instruction, target),
        instruction=instruction,
        source=source,
        line=number,
    )
