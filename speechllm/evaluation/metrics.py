"""Task metrics for generated text, and the table that says which task gets which.

Every score is a percentage in [0, 100] (the scale BLEU already uses), so one report table
reads uniformly; lower is better only for ``wer`` and ``cer``. Classification outputs are
compared after :func:`normalize_label`, transcripts after :func:`normalize_text`; ``*_raw``
scores compare the strings as generated.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import jiwer
import numpy as np
import sacrebleu
from numpy.typing import ArrayLike
from rapidfuzz.distance import Levenshtein
from sklearn import metrics as skm
from sklearn.preprocessing import MultiLabelBinarizer

from speechllm.data.joint import parse_joint  # noqa: F401  (the joint format's home is data)
from speechllm.evaluation.normalize import normalize_label, normalize_text

OTHER_LABEL = "(other)"
"""Confusion-matrix column for generated text that is none of the task's labels."""

Slot = tuple[str, str]


def wer(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Corpus word error rate: all edits over all reference words, in percent.

    Args:
        predictions: Hypotheses, one per utterance.
        targets: References, aligned with ``predictions``.
    """
    return 100.0 * jiwer.wer(reference=list(targets), hypothesis=list(predictions))


def cer(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Corpus character error rate, in percent.

    Args:
        predictions: Hypotheses, one per utterance.
        targets: References, aligned with ``predictions``.
    """
    return 100.0 * jiwer.cer(reference=list(targets), hypothesis=list(predictions))


def bleu(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """SacreBLEU corpus BLEU with its default 13a tokenisation (comparable across papers).

    Args:
        predictions: Detokenised system outputs.
        targets: One detokenised reference per output.
    """
    return sacrebleu.corpus_bleu(list(predictions), [list(targets)]).score


def accuracy(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Exact-match accuracy, in percent.

    Args:
        predictions: Predicted labels.
        targets: Reference labels.
    """
    return 100.0 * skm.accuracy_score(targets, predictions)


def uar(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Unweighted average recall (macro recall), in percent.

    The standard for emotion and paralinguistic tasks, whose classes are imbalanced: a model
    that always answers the majority class scores 100 / n_classes. Only classes present in
    ``targets`` are averaged, so a hallucinated label costs recall but adds no class.

    Args:
        predictions: Predicted labels.
        targets: Reference labels.
    """
    classes = sorted(set(targets))
    return 100.0 * skm.recall_score(
        targets, predictions, labels=classes, average="macro", zero_division=0.0
    )


def split_keywords(text: str) -> set[str]:
    """The normalised keyword set of a ``"kw1, kw2"`` string (order and repeats ignored)."""
    return {kw for kw in (normalize_text(part) for part in text.split(",")) if kw}


def keyword_f1(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Micro F1 over keyword sets: true/false positives are pooled over all items.

    Args:
        predictions: Generated ``"kw1, kw2"`` lists.
        targets: Reference ``"kw1, kw2"`` lists.
    """
    gold = [split_keywords(t) for t in targets]
    pred = [split_keywords(p) for p in predictions]
    binarizer = MultiLabelBinarizer().fit(gold + pred)
    return 100.0 * skm.f1_score(
        binarizer.transform(gold), binarizer.transform(pred), average="micro", zero_division=0.0
    )


def parse_slots(text: str) -> list[Slot]:
    """Read ``"slot=value; slot=value"`` into ``(type, filler)`` pairs; malformed parts are dropped.

    Types go through :func:`normalize_label` and fillers through :func:`normalize_text`,
    so capitalisation or "5" vs "five" in a generated filler is not counted as an error.
    """
    slots = []
    for part in text.split(";"):
        slot_type, sep, filler = part.partition("=")
        slot = (normalize_label(slot_type), normalize_text(filler))
        if sep and all(slot):
            slots.append(slot)
    return slots


def _word_distance(gold: str, pred: str) -> float:
    return jiwer.wer(reference=gold, hypothesis=pred)


def _char_distance(gold: str, pred: str) -> float:
    return Levenshtein.normalized_distance(gold, pred)


def _span_distance_counts(
    gold: list[Slot], pred: list[Slot], distance: Callable[[str, str], float]
) -> tuple[float, float, float]:
    """SLURP's ``SpanDistanceFMeasure`` for one utterance: (tp, fp, fn).

    Each predicted slot whose type occurs in the gold takes the same-type gold slot with the
    lowest filler distance (first on ties) and counts one true positive plus ``distance`` as
    both a false positive and a false negative; unmatched slots count 1 each.
    """
    gold = list(gold)
    tp = fp = fn = 0.0
    for slot_type, filler in pred:
        candidates = [(distance(g, filler), i) for i, (t, g) in enumerate(gold) if t == slot_type]
        if not candidates:
            fp += 1
            continue
        dist, index = min(candidates)
        tp, fp, fn = tp + 1, fp + dist, fn + dist
        gold.pop(index)
    return tp, fp, fn + len(gold)


def _f1_from_counts(tp: float, fp: float, fn: float) -> float:
    # SLURP's compute_metrics: F1 is 0 without true positives; otherwise 2PR/(P+R).
    return float(100.0 * 2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def slu_f1(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
    """SLU-F1 of Bastianelli et al. (2020), "SLURP: A Spoken Language Understanding Resource
    Package", EMNLP, Sec. 4, following the reference code (``scripts/evaluation/metrics``) with
    micro averaging.

    Exact span-F1 credits a slot only if type and filler match, which punishes a one-letter
    ASR slip as a miss. SLU-F1 instead credits every type match and charges the normalised
    filler distance as fractional false positive and false negative: word-F1 uses the
    word-level distance (WER), char-F1 the normalised character Levenshtein distance, and
    SLU-F1 is the F1 of their summed counts, mediating between the two.

    Args:
        predictions: Generated ``"slot=value; slot=value"`` strings.
        targets: Reference strings in the same format.

    Returns:
        ``slu_f1``, ``span_f1``, ``word_f1`` and ``char_f1``, in percent.
    """
    counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3))
    for prediction, target in zip(predictions, targets, strict=True):
        gold, pred = parse_slots(target), parse_slots(prediction)
        exact = sum((Counter(gold) & Counter(pred)).values())
        counts["span"] += (exact, len(pred) - exact, len(gold) - exact)
        counts["word"] += _span_distance_counts(gold, pred, _word_distance)
        counts["char"] += _span_distance_counts(gold, pred, _char_distance)
    counts["slu"] = counts["word"] + counts["char"]
    return {
        f"{name}_f1": _f1_from_counts(*counts[name]) for name in ("slu", "span", "word", "char")
    }


def auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Macro AUROC over labels, skipping labels with a single class in ``y_true``.

    The skip rule follows Gema et al. (2023), "Parameter-Efficient Fine-Tuning of LLaMA for
    the Clinical Domain": a label with no positive (or no negative) example has no defined
    ROC curve, and scoring it 0 or 1 would bias the mean.

    Args:
        y_true: Binary indicators, shape ``(n_items, n_labels)`` (one-hot for single-label
            classification, multi-hot for a multi-label head).
        y_score: Scores of the same shape, e.g. the model's normalised label likelihoods.

    Returns:
        Mean AUROC of the scorable labels in percent; ``nan`` if no label is scorable.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    scores = [
        skm.roc_auc_score(y_true[:, j], y_score[:, j])
        for j in range(y_true.shape[1])
        if len(np.unique(y_true[:, j])) == 2
    ]
    return 100.0 * float(np.mean(scores)) if scores else math.nan


def confusion_matrix(
    predictions: Sequence[str], targets: Sequence[str], labels: Sequence[str] | None = None
) -> tuple[list[str], list[list[int]]]:
    """Counts of (reference row, prediction column), with off-label generations pooled.

    An LLM can answer with any string; rather than one column per hallucination, predictions
    outside ``labels`` are counted in a final :data:`OTHER_LABEL` column (added only if used).

    Args:
        predictions: Predicted labels.
        targets: Reference labels.
        labels: Row and column order; defaults to the sorted reference labels.

    Returns:
        The labels (rows and columns) and the matrix as nested lists.
    """
    labels = list(labels) if labels is not None else sorted(set(targets))
    predictions = [p if p in labels else OTHER_LABEL for p in predictions]
    if OTHER_LABEL in predictions:
        labels.append(OTHER_LABEL)
    return labels, skm.confusion_matrix(targets, predictions, labels=labels).tolist()


def _transcription(predictions: list[str], targets: list[str]) -> dict[str, float]:
    norm_pred = [normalize_text(p) for p in predictions]
    norm_tgt = [normalize_text(t) for t in targets]
    return {
        "wer": wer(norm_pred, norm_tgt),
        "cer": cer(norm_pred, norm_tgt),
        "wer_raw": wer(predictions, targets),
        "cer_raw": cer(predictions, targets),
    }


def _translation(predictions: list[str], targets: list[str]) -> dict[str, float]:
    return {"bleu": bleu(predictions, targets)}


def _classification(predictions: list[str], targets: list[str]) -> dict[str, float]:
    predictions = [normalize_label(p) for p in predictions]
    targets = [normalize_label(t) for t in targets]
    return {"accuracy": accuracy(predictions, targets), "uar": uar(predictions, targets)}


def _keywords(predictions: list[str], targets: list[str]) -> dict[str, float]:
    return {"f1": keyword_f1(predictions, targets)}


Scorer = Callable[[list[str], list[str]], dict[str, float]]

TASK_SCORERS: dict[str, Scorer] = {
    "asr": _transcription,
    "st": _translation,
    "ic": _classification,
    "sf": slu_f1,
    "kws": _classification,
    "kwe": _keywords,
    "symptoms": _keywords,
    **dict.fromkeys(("er", "asc", "sc", "ac", "sns", "gr", "department"), _classification),
    "instruct": _translation,
}
"""Which metrics each task family reports."""

PRIMARY_METRIC: dict[str, str] = {
    "asr": "wer",
    "st": "bleu",
    "ic": "accuracy",
    "sf": "slu_f1",
    "kws": "accuracy",
    "kwe": "f1",
    "symptoms": "f1",  # of generated label lists; a head's scores give auroc
    **dict.fromkeys(("er", "asc", "sc", "ac", "sns", "gr", "department"), "uar"),
    "instruct": "bleu",
}
"""The headline metric per task (must agree with the task registry)."""

CLASSIFICATION_TASKS = frozenset(t for t, s in TASK_SCORERS.items() if s is _classification)


def score_task(
    task: str,
    predictions: list[str],
    targets: list[str],
    labels: list[str] | None = None,
    label_scores: ArrayLike | None = None,
) -> dict[str, float]:
    """All metrics of one task, plus ``n`` (the number of items).

    Args:
        task: Task name, a key of :data:`TASK_SCORERS`.
        predictions: Generated answers (for joint outputs, the part after :func:`parse_joint`).
        targets: Reference answers.
        labels: Label set of a classification task, the column order of ``label_scores``.
        label_scores: ``(n_items, n_labels)`` scores (e.g. normalised label likelihoods); adds
            ``auroc`` where at least one label has both classes among the targets.

    Returns:
        Metric name -> value (percent), and ``n``.
    """
    if task not in TASK_SCORERS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASK_SCORERS)}")
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    scores: dict[str, float] = {"n": len(targets), **TASK_SCORERS[task](predictions, targets)}
    if label_scores is not None:
        if labels is None:
            raise ValueError("label_scores needs labels (its column order)")
        one_hot = MultiLabelBinarizer(classes=[normalize_label(lab) for lab in labels])
        y_true = one_hot.fit_transform([[normalize_label(t)] for t in targets])
        if not math.isnan(value := auroc(y_true, label_scores)):
            scores["auroc"] = value
    return scores


def score_predictions(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Score ``predictions.jsonl``-style rows (``task``, ``prediction``, ``target``) per task.

    Args:
        rows: Prediction records of any mix of tasks.

    Returns:
        Task -> :func:`score_task` result, tasks in sorted order.
    """
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_task[row["task"]].append(row)
    return {
        task: score_task(task, [r["prediction"] for r in group], [r["target"] for r in group])
        for task, group in sorted(by_task.items())
    }
