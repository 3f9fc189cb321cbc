"""Metric functions: each compares predictions with references the way the field does.

Every score is a percentage in [0, 100] (the scale BLEU already uses), so one report table
reads uniformly; lower is better only for ``wer`` and ``cer``. Which task gets which metric is
the task's own business (``speechllm.tasks``); ``speechllm.evaluation.scoring`` applies it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import jiwer
import numpy as np
import sacrebleu
from numpy.typing import ArrayLike
from rapidfuzz.distance import Levenshtein
from sklearn import metrics as skm
from sklearn.preprocessing import MultiLabelBinarizer

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


BLEU_TOKENIZERS = {"zh": "zh", "yue": "zh", "ja": "ja-mecab", "th": "char", "lo": "char",
                   "km": "char", "my": "char"}  # fmt: skip
"""SacreBLEU tokeniser per target language where 13a (which splits on spaces and punctuation)
is wrong: Chinese and Japanese (as WMT and CoVoST 2 report them) and scripts written without
spaces; every other language keeps the default ``13a``."""


def bleu_tokenizer(lang: str | None) -> str:
    """The SacreBLEU tokeniser for references in ``lang`` (``zh``, ``ja-JP``, ``de``...)."""
    base = (lang or "").lower().replace("_", "-").split("-")[0]
    return BLEU_TOKENIZERS.get(base, "13a")


def bleu(predictions: Sequence[str], targets: Sequence[str], lang: str | None = None) -> float:
    """SacreBLEU corpus BLEU, tokenised for the target language (:func:`bleu_tokenizer`).

    Args:
        predictions: Detokenised system outputs.
        targets: One detokenised reference per output.
        lang: The references' language; ``None`` uses 13a.
    """
    tokenize = bleu_tokenizer(lang)
    return sacrebleu.corpus_bleu(list(predictions), [list(targets)], tokenize=tokenize).score


def chrf(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """SacreBLEU corpus chrF (character n-gram F-score; needs no tokeniser, so it is
    comparable across languages).

    Args:
        predictions: Detokenised system outputs.
        targets: One detokenised reference per output.
    """
    return sacrebleu.corpus_chrf(list(predictions), [list(targets)]).score


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


def macro_f1(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Macro F1 over the classes present in ``targets``, in percent (as :func:`uar` averages).

    Args:
        predictions: Predicted labels.
        targets: Reference labels.
    """
    classes = sorted(set(targets))
    return 100.0 * skm.f1_score(
        targets, predictions, labels=classes, average="macro", zero_division=0.0
    )


def split_keywords(text: str) -> set[str]:
    """The normalised keyword set of a ``"kw1, kw2"`` string (order and repeats ignored)."""
    return {kw for kw in (normalize_text(part) for part in text.split(",")) if kw}


NO_LABEL = "none"
"""How a multi-label target with no label is written."""


def split_labels(text: str) -> set[str]:
    """The label set of a ``"label, label"`` answer (:func:`normalize_label` each; ``none`` and
    empty parts dropped)."""
    return {lab for lab in (normalize_label(part) for part in text.split(",")) if lab} - {NO_LABEL}


def set_f1(predictions: Sequence[set[str]], targets: Sequence[set[str]]) -> float:
    """Micro F1 over per-item sets: true/false positives pooled over all items, in percent.

    An item with empty prediction and reference counts nothing either way.
    """
    pairs = list(zip(predictions, targets, strict=True))
    return _f1_from_counts(
        sum(len(p & t) for p, t in pairs),
        sum(len(p - t) for p, t in pairs),
        sum(len(t - p) for p, t in pairs),
    )


def keyword_f1(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Micro F1 over keyword sets (:func:`split_keywords`).

    Args:
        predictions: Generated ``"kw1, kw2"`` lists.
        targets: Reference ``"kw1, kw2"`` lists.
    """
    return set_f1([split_keywords(p) for p in predictions], [split_keywords(t) for t in targets])


def multi_hot(sets: Sequence[set[str]], labels: Sequence[str]) -> np.ndarray:
    """``(n_items, n_labels)`` indicators of each set over ``labels`` (others are ignored)."""
    return MultiLabelBinarizer(classes=list(labels)).fit_transform([s & set(labels) for s in sets])


def label_set_f1(
    predictions: Sequence[set[str]], targets: Sequence[set[str]], labels: Sequence[str]
) -> dict[str, float]:
    """Multi-label F1: ``micro_f1`` pooled over items (a predicted label outside the label set
    is a false positive) and ``macro_f1``, the mean per-label F1 over ``labels``, in percent."""
    y_true, y_pred = multi_hot(targets, labels), multi_hot(predictions, labels)
    return {
        "micro_f1": set_f1(predictions, targets),
        "macro_f1": 100.0 * skm.f1_score(y_true, y_pred, average="macro", zero_division=0.0),
    }


def choose_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """The probability threshold that maximises micro F1 of ``y_score >= threshold``.

    Chosen on a development set and then applied to the test set, as multi-label papers do;
    the candidates are the scores themselves (midpoints would change nothing on this set).

    Args:
        y_true: Multi-hot ``(n_items, n_labels)`` references.
        y_score: Probabilities of the same shape.
    """
    y_true, y_score = np.asarray(y_true, bool), np.asarray(y_score, float)
    best, best_f1 = 0.5, -1.0
    for threshold in np.unique(y_score):
        pred = y_score >= threshold
        tp = (pred & y_true).sum()
        f1 = 2 * tp / (pred.sum() + y_true.sum()) if tp else 0.0
        if f1 > best_f1:
            best, best_f1 = float(threshold), f1
    return best


def parse_slots(text: str, reference: bool = False) -> list[Slot]:
    """Read ``"slot=value; slot=value"`` into ``(type, filler)`` pairs; parts without ``=`` or
    a type are dropped.

    As SLURP's scorer prepares them (``util.release2prediction``), reference fillers are
    lower-cased and a reference slot needs a filler, while a predicted filler is kept as
    generated (an empty one is a slot with the largest distance), so a prediction's case counts.

    Args:
        text: The slot string.
        reference: ``text`` is a reference (gold) annotation.
    """
    slots = []
    for part in text.split(";"):
        slot_type, sep, filler = part.partition("=")
        slot_type, filler = slot_type.strip(), " ".join(filler.split())
        if reference:
            filler = filler.lower()
        if sep and slot_type and (filler or not reference):
            slots.append((slot_type, filler))
    return slots


def _word_distance(gold: str, pred: str) -> float:
    # SLURP: jiwer's WER of the filler (word edits / gold words, so it can exceed 1)
    return jiwer.wer(reference=gold, hypothesis=pred) if pred else 1.0


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
    Package", EMNLP, Sec. 4, following the reference code (``pswietojanski/slurp``,
    ``scripts/evaluation/metrics``) with micro averaging; ``tests/evaluation/test_slurp_parity.py``
    checks it against figures that code gives.

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
        gold, pred = parse_slots(target, reference=True), parse_slots(prediction)
        exact = sum((Counter(gold) & Counter(pred)).values())
        counts["span"] += (exact, len(pred) - exact, len(gold) - exact)
        counts["word"] += _span_distance_counts(gold, pred, _word_distance)
        counts["char"] += _span_distance_counts(gold, pred, _char_distance)
    counts["slu"] = counts["word"] + counts["char"]
    return {
        f"{name}_f1": _f1_from_counts(*counts[name]) for name in ("slu", "span", "word", "char")
    }


def label_aurocs(y_true: ArrayLike, y_score: ArrayLike) -> list[float]:
    """AUROC of each label (column), in percent; ``nan`` for a label with a single class in
    ``y_true`` (no positive or no negative example: no ROC curve).

    Args:
        y_true: Binary indicators, shape ``(n_items, n_labels)``.
        y_score: Scores of the same shape.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    return [
        100.0 * float(skm.roc_auc_score(y_true[:, j], y_score[:, j]))
        if len(np.unique(y_true[:, j])) == 2
        else math.nan
        for j in range(y_true.shape[1])
    ]


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
    scores = [s for s in label_aurocs(y_true, y_score) if not math.isnan(s)]
    return float(np.mean(scores)) if scores else math.nan


def micro_auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Micro AUROC: one ROC curve over every (item, label) pair pooled, in percent, so frequent
    labels weigh by their share of positives; ``nan`` if the pool holds a single class."""
    y_true, y_score = np.asarray(y_true).ravel(), np.asarray(y_score).ravel()
    if len(np.unique(y_true)) < 2:
        return math.nan
    return 100.0 * float(skm.roc_auc_score(y_true, y_score))


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
