"""Score a text classifier on text classification manifests, as clinical-outcome papers do.

::

    dev manifests ─► probabilities ─► per task, the threshold maximising micro F1
    manifests ─► probabilities (one LLM pass per batch, each task's head) ─► per task:
                   macro AUROC (labels with both classes), micro AUROC, AUROC per label,
                   micro/macro F1 at the dev threshold
             └─► metrics.json, predictions.jsonl, report.md

Every metric is :mod:`speechllm.evaluation.metrics`' (``auroc``, ``micro_auroc``,
``label_aurocs``, ``choose_threshold``, ``label_set_f1``). A test label outside the head's
label set cannot be scored: it is dropped and counted (``unknown_labels``).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechllm.data.text_classification import TextExample, read_text_examples
from speechllm.evaluation.metrics import (
    auroc,
    choose_threshold,
    label_aurocs,
    label_set_f1,
    micro_auroc,
    multi_hot,
)
from speechllm.models.text_classifier import TextClassifier

DEFAULT_THRESHOLD = 0.5
"""The threshold of a task without dev manifests."""
REPORTED_LABELS = 30
"""Labels listed per task in ``report.md`` (most positives first); ``metrics.json`` has all."""


def probabilities(
    model: TextClassifier, examples: Sequence[TextExample], batch_size: int = 16
) -> dict[str, tuple[list[TextExample], np.ndarray]]:
    """Per task, its examples (in order) and their label probabilities ``(n, n_labels)``.

    Batches follow the manifest's order, so the lines of one note for several tasks (written
    side by side) share a batch and the note is read once (:meth:`TextClassifier.forward`).
    """
    unknown = sorted({e.task for e in examples} - set(model.heads))
    if unknown:
        raise ValueError(f"the classifier has no head for task(s) {unknown}: {list(model.heads)}")
    rows: dict[str, list[TextExample]] = defaultdict(list)
    probs: dict[str, list[np.ndarray]] = defaultdict(list)
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        with torch.no_grad():
            logits = model([e.text for e in chunk], [e.task for e in chunk])
        for task, values in logits.items():
            rows[task] += [e for e in chunk if e.task == task]
            probs[task].append(values.float().sigmoid().cpu().numpy())
    return {task: (rows[task], np.concatenate(probs[task])) for task in sorted(rows)}


def dev_thresholds(
    model: TextClassifier, examples: Sequence[TextExample], batch_size: int = 16
) -> dict[str, float]:
    """Per task, the probability threshold maximising micro F1 on ``examples``."""
    thresholds = {}
    for task, (rows, probs) in probabilities(model, examples, batch_size).items():
        truth = multi_hot([set(e.labels) for e in rows], model.heads[task].labels)
        thresholds[task] = choose_threshold(truth, probs)
    return thresholds


def score(
    rows: Sequence[TextExample], probs: np.ndarray, labels: Sequence[str], threshold: float
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """One task's scores and its per-label AUROC (``None`` where a label has one class)."""
    gold = [set(e.labels) for e in rows]
    truth = multi_hot(gold, labels)
    predicted = [{labels[j] for j in np.flatnonzero(p >= threshold)} for p in probs]
    per_label = {
        label: {"auroc": _number(value), "positives": int(truth[:, j].sum())}
        for j, (label, value) in enumerate(zip(labels, label_aurocs(truth, probs), strict=True))
    }
    scores = {
        "n": len(rows),
        "auroc": _number(auroc(truth, probs)),
        "micro_auroc": _number(micro_auroc(truth, probs)),
        **label_set_f1(predicted, [g & set(labels) for g in gold], labels),
        "threshold": threshold,
        "labels": len(labels),
        "labels_scored": sum(v["auroc"] is not None for v in per_label.values()),
        "unknown_labels": sum(len(g - set(labels)) for g in gold),
    }
    return scores, per_label


def _first(examples: list[TextExample], limit: int | None) -> list[TextExample]:
    """The first ``limit`` lines of each manifest."""
    if limit is None:
        return examples
    taken: Counter[str] = Counter()
    kept = []
    for example in examples:
        taken[example.source] += 1
        if taken[example.source] <= limit:
            kept.append(example)
    return kept


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def evaluate_text_classifier(
    model: TextClassifier,
    manifests: list[str],
    out_dir: str | Path,
    dev_manifests: list[str] | None = None,
    batch_size: int = 16,
    limit: int | None = None,
    tasks: list[str] | None = None,
) -> dict[str, Any]:
    """Score ``model`` on ``manifests`` and write the report to ``out_dir``.

    Args:
        model: the classifier, in eval mode on its device.
        manifests: text classification manifests (``speechllm/data/text_classification.py``).
        out_dir: gets ``metrics.json``, ``predictions.jsonl`` and ``report.md``.
        dev_manifests: where each task's threshold is chosen (else :data:`DEFAULT_THRESHOLD`).
        batch_size: texts per forward pass.
        limit: only the first ``limit`` lines of each manifest.
        tasks: only these tasks' lines (``None``: every task).

    Returns:
        The ``metrics.json`` document: ``tasks`` (task -> metric -> value, with ``n``),
        ``per_label`` (task -> label -> AUROC and positives), ``thresholds`` and ``mean_auroc``
        (the mean of the tasks' macro AUROC).
    """
    examples = _first(read_text_examples(manifests), limit)
    dev = read_text_examples(dev_manifests or [])
    if tasks is not None:
        missing = sorted(set(tasks) - {e.task for e in examples})
        if missing:
            raise ValueError(f"tasks {missing} have no lines in {manifests}")
        examples, dev = ([e for e in part if e.task in tasks] for part in (examples, dev))
    model.eval()
    chosen = dev_thresholds(model, dev, batch_size) if dev else {}
    results: dict[str, Any] = {"tasks": {}, "per_label": {}, "thresholds": {}}
    records = []
    for task, (rows, probs) in probabilities(model, examples, batch_size).items():
        labels = model.heads[task].labels
        threshold = chosen.get(task, DEFAULT_THRESHOLD)
        results["tasks"][task], results["per_label"][task] = score(rows, probs, labels, threshold)
        results["thresholds"][task] = {
            "value": threshold,
            "chosen_on": "dev" if task in chosen else "default",
        }
        for example, p in zip(rows, probs, strict=True):
            top = np.argsort(-p)[:5]
            records.append({
                "id": example.id, "task": task, "labels": list(example.labels),
                "predicted": [labels[j] for j in np.flatnonzero(p >= threshold)],
                "top": {labels[j]: round(float(p[j]), 4) for j in top},
            })  # fmt: skip
    macro = [s["auroc"] for s in results["tasks"].values() if s["auroc"] is not None]
    results["mean_auroc"] = float(np.mean(macro)) if macro else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "report.md").write_text(report(results))
    return results


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def task_table(results: dict[str, Any]) -> str:
    """One row per task: n, macro and micro AUROC, micro and macro F1, threshold."""
    lines = [
        "| task | n | labels (scored) | macro AUROC | micro AUROC | micro F1 | macro F1 "
        "| threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, s in results["tasks"].items():
        lines.append(
            f"| {task} | {s['n']} | {s['labels']} ({s['labels_scored']}) | {_cell(s['auroc'])} | "
            f"{_cell(s['micro_auroc'])} | {s['micro_f1']:.1f} | {s['macro_f1']:.1f} | "
            f"{s['threshold']:.3f} ({results['thresholds'][task]['chosen_on']}) |"
        )
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    """``report.md``: the task table, then each task's most frequent labels' AUROC."""
    mean = results["mean_auroc"]
    parts = ["# Text classification", "", f"Mean of the tasks' macro AUROC: {_cell(mean)}.", "",
             task_table(results)]  # fmt: skip
    for task, per_label in results["per_label"].items():
        ranked = sorted(per_label.items(), key=lambda kv: -kv[1]["positives"])
        shown = ranked[:REPORTED_LABELS]
        rest = len(ranked) - len(shown)
        rows = [f"| {label} | {v['positives']} | {_cell(v['auroc'])} |" for label, v in shown]
        parts += ["", f"## {task}: AUROC per label (most positives first)", "",
                  "| label | positives | AUROC |", "|---|---|---|", *rows]  # fmt: skip
        if rest:
            parts.append(f"\n{rest} more label(s) in metrics.json.")
    return "\n".join(parts) + "\n"
