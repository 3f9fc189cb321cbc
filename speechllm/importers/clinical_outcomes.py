"""Clinical outcome prediction from admission notes (van Aken et al. 2021) -> text manifests.

van Aken, Papaioannou, Mayrdorfer, Budde, Gers and Löser (2021), "Clinical Outcome Prediction
from Admission Notes using Self-Supervised Knowledge Integration", EACL; the tasks Gema et al.
(2023) evaluate two-step PEFT on. Their scripts (github.com/bvanaken/clinical-outcome-prediction
at 3c786e0: ``tasks/{dia,pro,mp,los}/*.py`` and ``mimic_utils.save_mimic_split_patient_wise``)
turn MIMIC-III (credentialed access) into one quoted CSV per task and split, columns ``id``
(the admission, HADM_ID), ``text`` (the note) and the label column, names lower-cased::

    file (split: train, val, test)         label column          task here        labels
    DIA_GROUPS_3_DIGITS_adm_<split>.csv    short_codes           diagnoses        "401,428,V45"
    PRO_GROUPS_3_DIGITS_adm_<split>.csv    short_codes           procedures       "396,966"
    DIA_PLUS_adm_<split>.csv               labels                diagnoses_plus   3- and 4-digit
    PRO_PLUS_adm_<split>.csv               labels                procedures_plus  codes and words
    MP_IN_adm_<split>.csv                  hospital_expire_flag  mortality        0 or 1
    LOS_WEEKS_adm_<split>.csv              los_label             length_of_stay   0 (<= 3 days),
                                                                                  1 (<= 7), 2 (<=
                                                                                  14), 3 (> 14)

Without ``_adm`` the same tasks read whole discharge summaries (``admission=False`` here).
Splits are patient-wise (70/10/20) from one patient list, so no admission of ``val``/``test``
is in any task's ``train``. Each task becomes ``OUT/<task>/{train,dev,test}.jsonl`` (ids
``<task>-<id>``: a run may mix tasks), ``OUT/label_sets.json`` holds each task's labels (the
union over its splits: every code has a head column) and ``OUT/domain_text.txt`` the train
splits' notes, one per line (whitespace collapsed): a domain corpus for step one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from speechllm.data.errors import ManifestError
from speechllm.data.text_classification import (
    LABEL_SETS,
    MAX_TEXT_CHARS,
    TextExample,
    write_label_sets,
    write_text_examples,
)


@dataclass(frozen=True)
class OutcomeTask:
    """One task's files and label column."""

    prefix: str
    task: str
    column: str
    labels: tuple[str, ...] | None = None
    """A one-of-many task's labels; ``None``: multi-label, comma-separated."""


OUTCOME_TASKS = (
    OutcomeTask("DIA_GROUPS_3_DIGITS", "diagnoses", "short_codes"),
    OutcomeTask("PRO_GROUPS_3_DIGITS", "procedures", "short_codes"),
    OutcomeTask("DIA_PLUS", "diagnoses_plus", "labels"),
    OutcomeTask("PRO_PLUS", "procedures_plus", "labels"),
    OutcomeTask("MP_IN", "mortality", "hospital_expire_flag", ("0", "1")),
    OutcomeTask("LOS_WEEKS", "length_of_stay", "los_label", ("0", "1", "2", "3")),
)
SPLITS = {"train": "train", "val": "dev", "test": "test"}
"""Their split names -> ours."""
CORPUS = "domain_text.txt"


def find_files(folder: str | os.PathLike, admission: bool = True) -> dict[tuple[str, str], Path]:
    """``(task, our split) -> CSV`` for every task file in ``folder``."""
    tag = "_adm" if admission else ""
    found = {}
    for spec in OUTCOME_TASKS:
        for theirs, ours in SPLITS.items():
            path = Path(folder) / f"{spec.prefix}{tag}_{theirs}.csv"
            if path.is_file():
                found[(spec.task, ours)] = path
    return found


def read_csv(path: str | os.PathLike, spec: OutcomeTask, max_chars: int = MAX_TEXT_CHARS
             ) -> Iterator[tuple[str, TextExample]]:  # fmt: skip
    """``(admission id, example)`` per row; a bad row raises naming ``file:line`` (the line its
    record starts on)."""
    source = str(path)
    csv.field_size_limit(max(max_chars + 1, csv.field_size_limit()))
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = sorted({"id", "text", spec.column} - set(reader.fieldnames or ()))
        if missing:
            raise ManifestError(
                f"missing column(s) {missing}: a {spec.prefix} file has id, text, {spec.column}",
                reason="missing_field",
                source=source,
                line=1,
            )
        start = reader.line_num + 1  # a row's first line (a note spans several)
        try:
            for row in reader:
                yield _example(row, spec, source, start, max_chars)
                start = reader.line_num + 1
        except csv.Error as error:  # an unterminated quote, a field past the size limit
            reason = "too_long" if "limit" in str(error) else "malformed_csv"
            raise ManifestError(
                str(error), reason=reason, source=source, line=reader.line_num
            ) from None


def _example(row: dict[str, str], spec: OutcomeTask, source: str, line: int, max_chars: int
             ) -> tuple[str, TextExample]:  # fmt: skip
    def fail(message: str, reason: str = "bad_field") -> ManifestError:
        return ManifestError(message, reason=reason, source=source, line=line)

    admission, text, value = (row.get(key) or "" for key in ("id", "text", spec.column))
    if not admission.strip():
        raise fail("empty id")
    if not text.strip():
        raise fail("empty text")
    if len(text) > max_chars:
        raise fail(f"{len(text)} characters, more than max_chars={max_chars}", "too_long")
    if spec.labels is None:
        labels = tuple(dict.fromkeys(x.strip() for x in value.split(",") if x.strip()))
    else:
        labels = (_whole(value),)  # pandas writes 1 as "1.0" once a column held a NaN
        if labels[0] not in spec.labels:
            raise fail(f"{spec.column} {value!r} is not one of {list(spec.labels)}", "bad_label")
    admission = _whole(admission.strip())
    return admission, TextExample(f"{spec.task}-{admission}", text, spec.task, labels, source, line)


def _whole(value: str) -> str:
    """``"1.0"`` -> ``"1"``; anything else as it is."""
    head, dot, tail = value.strip().partition(".")
    return head if dot and head.isdigit() and set(tail) <= {"0"} else value.strip()


def to_manifests(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    admission: bool = True,
    max_chars: int = MAX_TEXT_CHARS,
) -> dict[str, int]:
    """Import every task file of ``folder``; returns lines per written file.

    Args:
        folder: the folder the task scripts saved to.
        out: the output folder.
        admission: the admission-note tasks (``*_adm_*``); ``False``: discharge summaries.
        max_chars: longest note read (characters).
    """
    files = find_files(folder, admission)
    if not files:
        example = f"DIA_GROUPS_3_DIGITS{'_adm' if admission else ''}_train.csv"
        raise FileNotFoundError(f"{folder}: no clinical outcome CSVs (e.g. {example})")
    out = Path(out)
    specs = {spec.task: spec for spec in OUTCOME_TASKS}
    counts: dict[str, int] = {}
    sets: dict[str, set[str]] = {}
    notes: dict[str, str] = {}
    held_out: set[str] = set()
    for (task, split), path in sorted(files.items()):
        rows = list(read_csv(path, specs[task], max_chars))
        seen: dict[str, int] = {}
        for admission_id, example in rows:
            if admission_id in seen:
                first = f"first at line {seen[admission_id]}"
                where = {"source": str(path), "line": example.line}
                message = f"duplicate id {admission_id!r} ({first})"
                raise ManifestError(message, reason="duplicate_id", **where)
            seen[admission_id] = example.line
            sets.setdefault(task, set()).update(example.labels)
            if split == "train":
                notes.setdefault(admission_id, " ".join(example.text.split()))
            else:
                held_out.add(admission_id)
        examples = [example for _, example in rows]
        counts[f"{task}/{split}.jsonl"] = write_text_examples(
            out / task / f"{split}.jsonl", examples
        )
    label_sets = {task: sorted(labels) for task, labels in sorted(sets.items())}
    for task, spec in specs.items():  # a one-of-many task keeps every label as a column
        if task in label_sets and spec.labels is not None:
            label_sets[task] = list(spec.labels)
    write_label_sets(out / LABEL_SETS, label_sets)
    corpus = [text for admission_id, text in notes.items() if admission_id not in held_out]
    (out / CORPUS).write_text("".join(f"{text}\n" for text in corpus), encoding="utf-8")
    counts[CORPUS] = len(corpus)
    return counts
