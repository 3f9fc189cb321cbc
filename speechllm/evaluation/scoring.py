"""Score records per task, the way the task says (``speechllm.tasks``).

One function serves ``speechllm-eval``, the training callback and the report's per-split
table, so a task is scored the same everywhere::

    records (task, prediction, target, [label_scores], [lang], [tgt_lang])
      └─► group by task ─► get_task(task).scoring ─► transcript | translation | label | labels
                                                     | slots | keywords | text | none
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from speechllm.evaluation.metrics import (
    accuracy,
    auroc,
    bleu,
    bleu_tokenizer,
    cer,
    chrf,
    keyword_f1,
    label_set_f1,
    macro_f1,
    multi_hot,
    slu_f1,
    split_labels,
    uar,
    wer,
)
from speechllm.evaluation.normalize import (
    normalize_label,
    resolve_normalizer,
    transcript_normalizer,
)
from speechllm.tasks import get_task


def _by_language(langs: Sequence[str | None]) -> dict[str | None, list[int]]:
    groups: dict[str | None, list[int]] = defaultdict(list)
    for i, lang in enumerate(langs):
        groups[lang].append(i)
    return dict(groups)


def _transcripts(
    predictions: list[str], targets: list[str], langs: Sequence[str | None], normalizer: str
) -> dict[str, float]:
    """Corpus WER/CER after the normaliser, and raw. As the Open ASR Leaderboard does, an item
    whose reference normalises to nothing (a lone "uh") is left out of the normalised scores."""
    scores: dict[str, float] = {}
    pairs = []
    for prediction, target, lang in zip(predictions, targets, langs, strict=True):
        norm = transcript_normalizer(normalizer, lang)
        if gold := norm(target):
            pairs.append((norm(prediction), gold))
    if pairs:
        pred, gold = map(list, zip(*pairs, strict=True))
        scores = {"wer": wer(pred, gold), "cer": cer(pred, gold)}
    return scores | {"wer_raw": wer(predictions, targets), "cer_raw": cer(predictions, targets)}


def _translations(
    predictions: list[str], targets: list[str], langs: Sequence[str | None]
) -> dict[str, float]:
    """Corpus BLEU and chrF per target language; with several languages, each one's scores
    (``bleu_<lang>``) and their mean as ``bleu``/``chrf`` (BLEU tokenised two ways cannot be
    pooled into one corpus)."""
    groups = _by_language(langs)
    per_lang = {
        lang: {
            "bleu": bleu([predictions[i] for i in rows], [targets[i] for i in rows], lang),
            "chrf": chrf([predictions[i] for i in rows], [targets[i] for i in rows]),
        }
        for lang, rows in groups.items()
    }
    if len(per_lang) == 1:
        return next(iter(per_lang.values()))
    scores = {
        name: float(np.mean([s[name] for s in per_lang.values()])) for name in ("bleu", "chrf")
    }
    for lang, lang_scores in sorted(per_lang.items(), key=lambda kv: str(kv[0])):
        scores |= {f"{name}_{lang}": value for name, value in lang_scores.items()}
    return scores


def _label(
    predictions: list[str],
    targets: list[str],
    labels: Sequence[str] | None,
    label_scores: ArrayLike | None,
) -> dict[str, float]:
    pred = [normalize_label(p) for p in predictions]
    gold = [normalize_label(t) for t in targets]
    scores = {
        "accuracy": accuracy(pred, gold),
        "uar": uar(pred, gold),
        "macro_f1": macro_f1(pred, gold),
    }
    if label_scores is not None:
        if labels is None:
            raise ValueError("label_scores needs labels (its column order)")
        y_true = multi_hot([{t} for t in gold], [normalize_label(lab) for lab in labels])
        scores["auroc"] = auroc(y_true, label_scores)
    return scores


def _labels(
    predictions: list[str],
    targets: list[str],
    labels: Sequence[str] | None,
    label_scores: ArrayLike | None,
) -> dict[str, float]:
    pred = [split_labels(p) for p in predictions]
    gold = [split_labels(t) for t in targets]
    names = [normalize_label(lab) for lab in labels] if labels else sorted(set().union(*gold))
    scores = label_set_f1(pred, gold, names)
    if label_scores is not None:
        if labels is None:
            raise ValueError("label_scores needs labels (its column order)")
        scores["auroc"] = auroc(multi_hot(gold, names), label_scores)
    return scores


def score_task(
    task: str,
    predictions: list[str],
    targets: list[str],
    labels: Sequence[str] | None = None,
    label_scores: ArrayLike | None = None,
    langs: Sequence[str | None] | None = None,
    normalizer: str = "auto",
) -> dict[str, float]:
    """All metrics of one task, by its scoring family, plus ``n`` (the number of items).

    Args:
        task: A registered task name.
        predictions: Answers (for joint outputs, the part after ``parse_joint``).
        targets: Reference answers.
        labels: Label set of a ``label``/``labels`` task, the column order of ``label_scores``.
        label_scores: ``(n_items, n_labels)`` scores (label likelihoods or head
            probabilities); adds ``auroc`` (``nan`` when no label has both classes).
        langs: Per item, the transcript's language (``transcript``) or the translation's
            target language (``translation``, ``text``); ``None`` means English.
        normalizer: Transcript normaliser, one of ``speechllm.evaluation.normalize.NORMALIZERS``.

    Returns:
        Metric name -> value (percent), and ``n``.
    """
    scoring = get_task(task).scoring
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    langs = list(langs) if langs is not None else [None] * len(targets)
    if scoring == "transcript":
        scores = _transcripts(predictions, targets, langs, normalizer)
    elif scoring in ("translation", "text"):
        scores = _translations(predictions, targets, langs)
    elif scoring == "label":
        scores = _label(predictions, targets, labels, label_scores)
    elif scoring == "labels":
        scores = _labels(predictions, targets, labels, label_scores)
    elif scoring == "slots":
        scores = slu_f1(predictions, targets)
    elif scoring == "keywords":
        scores = {"f1": keyword_f1(predictions, targets)}
    else:
        scores = {}
    return {"n": len(targets), **{k: v for k, v in scores.items() if not math.isnan(v)}}


def record_lang(record: dict[str, Any]) -> str | None:
    """The language a record is scored in: the target language of a translation, else the
    spoken language."""
    return record.get("tgt_lang") or record.get("lang")


def score_records(
    records: Sequence[dict[str, Any]],
    labels_by_task: dict[str, list[str]] | None = None,
    normalizer: str = "auto",
) -> dict[str, dict[str, float]]:
    """:func:`score_task` per task over decoded records, tasks in sorted order.

    Args:
        records: Dicts with ``task``, ``prediction``, ``target`` and optionally
            ``label_scores``, ``lang`` and ``tgt_lang``.
        labels_by_task: Label set per task (the columns of ``label_scores``).
        normalizer: Transcript normaliser.
    """
    labels_by_task = labels_by_task or {}
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_task[record["task"]].append(record)
    results = {}
    for task, rows in sorted(by_task.items()):
        scored = all("label_scores" in r for r in rows) and task in labels_by_task
        results[task] = score_task(
            task,
            [r["prediction"] for r in rows],
            [r["target"] for r in rows],
            labels_by_task.get(task),
            [r["label_scores"] for r in rows] if scored else None,
            [record_lang(r) for r in rows],
            normalizer,
        )
    return results


def scoring_notes(
    records: Sequence[dict[str, Any]], normalizer: str = "auto"
) -> dict[str, dict[str, str]]:
    """What each task was scored with, for the report: the transcript normaliser per spoken
    language, the BLEU tokeniser per target language."""
    notes: dict[str, dict[str, str]] = defaultdict(dict)
    for record in records:
        scoring, lang = get_task(record["task"]).scoring, record_lang(record)
        if scoring == "transcript":
            notes[record["task"]][f"normalizer[{lang or 'en'}]"] = resolve_normalizer(
                normalizer, lang
            )
        elif scoring in ("translation", "text"):
            notes[record["task"]][f"bleu_tokenize[{lang or '-'}]"] = bleu_tokenizer(lang)
    return dict(sorted(notes.items()))
