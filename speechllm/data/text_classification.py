"""Text classification manifests: one text, its task and its labels per JSONL line.

::

    {"id": "adm-1", "text": "CHIEF COMPLAINT: chest pain ...", "task": "diagnoses",
     "labels": ["401", "414", "428"]}
    {"id": "adm-2", "text": "PRESENT ILLNESS: ...", "task": "mortality", "target": "0"}

``labels`` (a list) or ``target`` (the same labels written ``"a, b"``) give the text's labels:
several for a multi-label task (diagnosis codes), one for a one-of-many task (mortality, a
length-of-stay bucket), none (``[]`` or ``""``) for a multi-label text without any. ``id``
defaults to ``<file stem>-<line>`` and must not repeat; ``task`` is any identifier (a task of
the registry must be a classifying one). A task's label set is the sorted union of its labels in
the training manifests, or a ``label_sets.json`` file (``{"task": ["label", ...]}``) written
beside the data by the importer or the synthetic domain (so a rare label seen only at test time
still has a column).

Reads are bounded as :mod:`speechllm.data.text_items` bounds them (a regular file of at most
``MAX_TEXT_FILE_BYTES``, each line read in bounded bytes), and every problem names its
file:line. :class:`speechllm.data.text.TextClassificationData` batches the examples.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from speechllm.data.errors import DataError, ManifestError
from speechllm.data.manifest import collect, decode_line, json_object
from speechllm.data.text_items import bounded_lines, check_text_file, max_line_bytes
from speechllm.tasks import TASKS

MAX_TEXT_CHARS = 100_000
"""Default longest text in characters (a long discharge summary; admission notes are far
shorter). The model reads at most its ``max_tokens`` of it."""
LABEL_SETS = "label_sets.json"
"""The label-set file an importer or the synthetic domain writes beside its manifests."""
_FIELDS = {"id", "text", "task", "target", "labels"}


@dataclass(frozen=True)
class TextExample:
    """One validated manifest line."""

    id: str
    text: str
    task: str
    labels: tuple[str, ...]
    """The text's labels, in the order written (none for a multi-label text without any)."""
    source: str = ""
    line: int = 0

    @property
    def target(self) -> str:
        """``labels`` as a head reads them: ``"a, b"``."""
        return ", ".join(self.labels)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "task": self.task, "labels": list(self.labels)}


def write_text_examples(path: str | os.PathLike, examples: Iterable[TextExample]) -> int:
    """Write ``examples`` as a manifest (the one writer importers and the synthetic domain use);
    returns the line count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for example in examples:
            f.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_text_examples(
    paths: Sequence[str | os.PathLike],
    on_error: Callable[[DataError], None] | None = None,
    max_chars: int = MAX_TEXT_CHARS,
) -> list[TextExample]:
    """Read and validate text classification manifests, ids unique across them.

    Args:
        paths: ``.jsonl`` manifests, read in order.
        on_error: Called with each bad line's error, which is then skipped; ``None`` raises the
            first.
        max_chars: Longest text in characters; longer lines are bad (``too_long``).

    Returns:
        The valid examples in file order.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    seen: dict[str, str] = {}
    examples: list[TextExample] = []
    for path in paths:
        source = str(path)
        if not source.endswith(".jsonl"):
            raise ValueError(f"{source}: a text classification manifest is a .jsonl file")
        check_text_file(source)
        with open(source, "rb") as f:
            lines = (
                (number, partial(_example, raw, source, number, max_chars))
                for number, raw in bounded_lines(f, max_line_bytes(max_chars))
            )
            examples += collect(lines, source, seen, on_error)
    return examples


def _example(raw: bytes | None, source: str, number: int, max_chars: int) -> TextExample | None:
    def fail(message: str, reason: str) -> ManifestError:
        return ManifestError(message, reason=reason, source=source, line=number)

    if raw is None:
        raise fail(f"line longer than {max_line_bytes(max_chars)} bytes", "too_long")
    line = decode_line(raw, source, number)
    if not line.strip():
        return None
    record = json_object(line, fail)
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise fail(f"unknown field(s) {unknown}; a text example has {sorted(_FIELDS)}", "bad_field")
    missing = sorted({"text", "task"} - set(record))
    if missing or ("target" in record) == ("labels" in record):
        given = "" if missing else "; give exactly one of 'target' and 'labels'"
        raise fail(f"missing required field(s) {missing}{given}", "missing_field")
    for key in ("id", "text", "task", "target"):
        if key in record and not isinstance(record[key], str):
            raise fail(f"field {key!r} must be a string", "bad_field")
    if "id" in record and not record["id"]:
        raise fail("empty id", "bad_field")
    if not record["text"].strip():
        raise fail("empty text", "bad_field")
    if len(record["text"]) > max_chars:
        raise fail(f"{len(record['text'])} characters, more than max_chars={max_chars}", "too_long")
    task = record["task"]
    if not task.isidentifier():
        raise fail(f"task must be an identifier, got {task!r}", "bad_field")
    if task in TASKS and not TASKS[task].classifies:
        raise fail(
            f"task {task!r} is a {TASKS[task].scoring} task, not a classification", "bad_field"
        )
    if "labels" in record:
        labels = record["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise fail("field 'labels' must be a list of strings", "bad_field")
    else:
        labels = record["target"].split(",")
    labels = [label.strip() for label in labels]
    if "labels" in record and any(not label or "," in label for label in labels):
        raise fail("a label is non-empty and holds no comma", "bad_label")
    labels = [label for label in labels if label]
    if len(set(labels)) != len(labels):
        raise fail(f"labels repeat: {labels}", "bad_label")
    item_id = record.get("id", f"{Path(source).stem}-{number}")
    return TextExample(item_id, record["text"], task, tuple(labels), source, number)


def label_sets(examples: Iterable[TextExample]) -> dict[str, list[str]]:
    """Each task's sorted label union: the columns of its head."""
    found: dict[str, set[str]] = {}
    for example in examples:
        found.setdefault(example.task, set()).update(example.labels)
    return {task: sorted(labels) for task, labels in sorted(found.items())}


def read_label_sets(path: str | os.PathLike) -> dict[str, list[str]]:
    """A ``label_sets.json`` file: ``{task: [label, ...]}``, each set of at least two labels."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable label-set file ({error})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and len(v) >= 2 and all(isinstance(x, str) and x for x in v)
        for v in data.values()
    ):
        raise ValueError(f"{path}: expected {{task: [label, label, ...]}}, two labels or more")
    return {task: list(labels) for task, labels in data.items()}


def write_label_sets(path: str | os.PathLike, sets: dict[str, list[str]]) -> Path:
    path = Path(path)
    path.write_text(json.dumps(sets, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
