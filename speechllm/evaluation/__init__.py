"""Scoring generated answers per task and writing the evaluation report."""

from speechllm.evaluation.metrics import (
    CLASSIFICATION_TASKS,
    PRIMARY_METRIC,
    TASK_SCORERS,
    accuracy,
    auroc,
    bleu,
    cer,
    confusion_matrix,
    keyword_f1,
    parse_joint,
    parse_slots,
    score_predictions,
    score_task,
    slu_f1,
    uar,
    wer,
)
from speechllm.evaluation.normalize import normalize_label, normalize_text
from speechllm.evaluation.report import TrainingCurves, load_csv_curves, write_report

__all__ = [
    "CLASSIFICATION_TASKS",
    "PRIMARY_METRIC",
    "TASK_SCORERS",
    "TrainingCurves",
    "accuracy",
    "auroc",
    "bleu",
    "cer",
    "confusion_matrix",
    "keyword_f1",
    "load_csv_curves",
    "normalize_label",
    "normalize_text",
    "parse_joint",
    "parse_slots",
    "score_predictions",
    "score_task",
    "slu_f1",
    "uar",
    "wer",
    "write_report",
]
