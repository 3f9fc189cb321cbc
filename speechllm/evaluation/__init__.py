"""Scoring generated answers per task and writing the evaluation report."""

from speechllm.evaluation.metrics import (
    accuracy,
    auroc,
    bleu,
    cer,
    chrf,
    confusion_matrix,
    keyword_f1,
    label_aurocs,
    macro_f1,
    micro_auroc,
    parse_slots,
    slu_f1,
    uar,
    wer,
)
from speechllm.evaluation.normalize import normalize_label, normalize_text, transcript_normalizer
from speechllm.evaluation.report import TrainingCurves, load_csv_curves, write_report
from speechllm.evaluation.scoring import score_records, score_task

__all__ = [
    "TrainingCurves",
    "accuracy",
    "auroc",
    "bleu",
    "cer",
    "chrf",
    "confusion_matrix",
    "keyword_f1",
    "label_aurocs",
    "load_csv_curves",
    "macro_f1",
    "micro_auroc",
    "normalize_label",
    "normalize_text",
    "parse_slots",
    "score_records",
    "score_task",
    "slu_f1",
    "transcript_normalizer",
    "uar",
    "wer",
    "write_report",
]
