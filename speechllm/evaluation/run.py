"""Evaluate a SpeechLLM on manifests: decode every item, score each task, write the report.

::

    manifests ─► eval_batches (data) ───────────► decode_batch ─► score_records (per task)
                                                                └─► write_report: predictions.jsonl,
                                                                    metrics.json, report.md, PNGs
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import move_data_to_device
from tqdm import tqdm

from speechllm.data.datamodule import eval_batches
from speechllm.data.features import Featurizer
from speechllm.data.instructions import instruction_split_of
from speechllm.data.joint import parse_joint, transcripts
from speechllm.data.manifest import ManifestEntry, read_manifests
from speechllm.data.tasks import get_task
from speechllm.evaluation.decoding import DecodingConfig, decode_batch
from speechllm.evaluation.metrics import score_task
from speechllm.evaluation.report import load_csv_curves, write_report
from speechllm.models.speech_llm import SpeechLLM


def _first_lines(entries: list[ManifestEntry], limit: int | None) -> list[ManifestEntry]:
    if limit is None:
        return entries
    taken: Counter[str] = Counter()
    kept = []
    for entry in entries:
        if taken[entry.source] < limit:
            taken[entry.source] += 1
            kept.append(entry)
    return kept


def task_labels(entries: Iterable[ManifestEntry]) -> dict[str, list[str]]:
    """Label set per task: the manifest ``labels`` field, else the task registry's default.

    Decoding constrains and scores a whole task against one label set, so lines of a task
    that disagree are an error rather than a silent pick.
    """
    labels: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        entry_labels = entry.labels or get_task(entry.task).labels
        if entry_labels is None:
            continue
        known = labels.setdefault(entry.task, entry_labels)
        if known != entry_labels:
            raise ValueError(
                f"{entry.source}:{entry.line}: task {entry.task!r} has labels "
                f"{list(entry_labels)} but earlier lines have {list(known)}; "
                "evaluation needs one label set per task"
            )
    return {task: list(task_set) for task, task_set in labels.items()}


def keep_answers(records: Iterable[dict[str, Any]], decoding: DecodingConfig) -> None:
    """Cut joint tasks' predictions (``"ASR: ... | task: answer"``) to their answer, in place
    (the manifest target is the answer alone), keeping the transcript in ``transcript``."""
    for record in records:
        if decoding.is_joint(record["task"]):
            record["transcript"], record["prediction"] = parse_joint(record["prediction"])


def score_transcripts(
    records: Iterable[dict[str, Any]],
    references: dict[str, str],
    scores: dict[str, dict[str, float]],
) -> None:
    """Add ``transcript_wer`` beside each joint task's answer metrics, in place: the WER of the
    transcripts its answers were conditioned on, over the lines with a reference transcript
    (:func:`speechllm.data.joint.transcripts`)."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if "transcript" in record and record["id"] in references:
            by_task[record["task"]].append(record)
    for task, rows in by_task.items():
        hypotheses = [r["transcript"] for r in rows]
        wer = score_task("asr", hypotheses, [references[r["id"]] for r in rows])["wer"]
        scores[task]["transcript_wer"] = wer


def score_records(
    records: Sequence[dict[str, Any]], labels_by_task: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """:func:`score_task` per task over :func:`decode_batch` records, with AUROC from their
    ``label_scores`` where the task has a label set. Tasks in sorted order."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_task[record["task"]].append(record)
    return {
        task: score_task(
            task,
            [r["prediction"] for r in rows],
            [r["target"] for r in rows],
            labels_by_task.get(task),
            [r["label_scores"] for r in rows] if task in labels_by_task else None,
        )
        for task, rows in sorted(by_task.items())
    }


def evaluate(
    model: SpeechLLM,
    manifests: list[str],
    out_dir: str | Path,
    decoding: DecodingConfig,
    instruction_split: str = "seen",
    max_batch_seconds: float = 60.0,
    limit: int | None = None,
    curves_csv: str | None = None,
    *,
    num_workers: int = 0,
) -> dict[str, Any]:
    """Decode every manifest line, score each task and write the report to ``out_dir``.

    Args:
        model: The speech LLM, on the device to evaluate on.
        manifests: JSONL manifests, read in order.
        out_dir: Gets ``predictions.jsonl``, ``metrics.json``, ``report.md`` and its PNGs.
        decoding: Decoding settings.
        instruction_split: Template split for lines without ``meta.instruction_split``.
        max_batch_seconds: Cap on padded audio seconds per batch.
        limit: Evaluate only the first ``limit`` lines of each manifest (so a quick look at
            a test set and its held-out-instruction copy still scores both).
        curves_csv: A Lightning ``CSVLogger`` ``metrics.csv``, to plot training curves.
        num_workers: DataLoader worker processes.

    Returns:
        The ``metrics.json`` document: ``tasks`` (task -> metric -> value, with ``n``),
        ``instruction_splits`` and ``confusion_matrices``.
    """
    entries = _first_lines(read_manifests(manifests), limit)
    position = {entry.id: i for i, entry in enumerate(entries)}
    split_of = {entry.id: instruction_split_of(entry, instruction_split) for entry in entries}
    labels_by_task = task_labels(entries)
    batches = eval_batches(
        entries,
        Featurizer(model.encoder.feature_extractor),
        max_batch_seconds=max_batch_seconds,
        num_workers=num_workers,
        instruction_split=instruction_split,
    )
    device = next(model.parameters()).device
    model.eval()
    records = []
    for batch in tqdm(batches, desc="evaluating", unit="batch"):
        records += decode_batch(model, move_data_to_device(batch, device), decoding, labels_by_task)
    for record in records:
        record["instruction_split"] = split_of[record["id"]]
    keep_answers(records, decoding)
    records.sort(key=lambda record: position[record["id"]])
    scores = score_records(records, labels_by_task)
    score_transcripts(records, transcripts(entries), scores)
    curves = load_csv_curves(curves_csv) if curves_csv else None
    write_report(out_dir, records, scores, curves)
    return json.loads((Path(out_dir) / "metrics.json").read_text())
