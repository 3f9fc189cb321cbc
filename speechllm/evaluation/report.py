"""Evaluation report: ``metrics.json``, ``predictions.jsonl`` and a ``report.md`` with plots.

``report.md`` is rendered only from the dict written to ``metrics.json``, so the two can
never disagree. Plots use matplotlib's object API on the Agg canvas: no display, no global
pyplot state, safe inside a training process.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from speechllm.evaluation.metrics import confusion_matrix
from speechllm.evaluation.normalize import normalize_label
from speechllm.evaluation.scoring import score_records, scoring_notes
from speechllm.tasks import get_task

DECIMALS = 2
"""Decimals of every score in ``report.md``."""

SPLITS = ("seen", "heldout")
"""Values of a prediction's ``instruction_split``."""

PREDICTION_FIELDS = ("id", "task", "instruction", "instruction_split", "prediction", "target")
OPTIONAL_FIELDS = ("lang", "tgt_lang", "label_scores", "transcript")
"""Written when a prediction has them: what changes how it is scored (languages, label scores),
and the transcript joint decoding conditioned its answer on."""

_CURVE_COLUMN = re.compile(r"(train|val)/loss|(train|val)/[^/]+/[^/]+")

SMOOTHING = 0.9
"""Exponential-moving-average weight for curves of 50 points or more. A batch holds one task,
so a raw per-step loss shows mostly which task the step drew."""


@dataclass
class TrainingCurves:
    """Logged scalars over optimizer steps, and where each curriculum stage began."""

    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """Metric name (``train/loss``, ``val/asr/wer``...) -> ``(step, value)`` points."""
    stage_starts: list[tuple[int, str]] = field(default_factory=list)
    """``(step, stage)`` at the first logged row of each stage."""


def load_csv_curves(path: str | Path) -> TrainingCurves:
    """Read a Lightning ``CSVLogger`` ``metrics.csv``.

    Keeps ``train/loss``, ``val/loss`` and ``<train|val>/<task>/<metric>`` columns; CSVLogger writes
    one sparse row per logging call, so empty cells are skipped. A ``stage`` column, if
    present, marks the stage boundaries, named from the run's config when an ``hparams.yaml``
    beside the file holds it (``speechllm.training.train`` logs it there).

    Args:
        path: The ``metrics.csv`` file.

    Returns:
        The curves, in file order.
    """
    curves = TrainingCurves()
    names = _stage_names(Path(path).with_name("hparams.yaml"))
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row["step"]))
            for name, value in row.items():
                if value and _CURVE_COLUMN.fullmatch(name):
                    curves.series.setdefault(name, []).append((step, float(value)))
            stage = (row.get("stage") or "").removesuffix(".0")
            stage = names[int(stage)] if stage.isdigit() and int(stage) < len(names) else stage
            if stage and (not curves.stage_starts or curves.stage_starts[-1][1] != stage):
                curves.stage_starts.append((step, stage))
    return curves


def _stage_names(hparams: Path) -> list[str]:
    """Curriculum stage names from a logged run config; none if it has no curriculum."""
    if not hparams.is_file():
        return []
    stages = ((yaml.safe_load(hparams.read_text()) or {}).get("curriculum") or {}).get("stages")
    if isinstance(stages, dict):  # keyed by name, in order
        return [str(name) for name in stages]
    return [str(stage.get("name", i)) for i, stage in enumerate(stages or [])]  # older runs


def write_report(
    out_dir: str | Path,
    predictions: list[dict[str, Any]],
    metrics: dict[str, dict[str, float]],
    curves: TrainingCurves | None = None,
    labels_by_task: dict[str, list[str]] | None = None,
    normalizer: str = "auto",
    thresholds: dict[str, float] | None = None,
) -> Path:
    """Write ``predictions.jsonl``, ``metrics.json``, ``report.md`` and its PNGs.

    Args:
        out_dir: Output folder, created if missing.
        predictions: Rows with :data:`PREDICTION_FIELDS` (and any :data:`OPTIONAL_FIELDS`);
            ``instruction_split`` is one of :data:`SPLITS`.
        metrics: Task -> :func:`~speechllm.evaluation.scoring.score_task` result.
        curves: Training curves to plot, e.g. from :func:`load_csv_curves`.
        labels_by_task: Label sets (the columns of ``label_scores``), for the split table.
        normalizer: The transcript normaliser ``metrics`` was computed with.
        thresholds: Head thresholds chosen on a development set, reported as used.

    Returns:
        Path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.jsonl", "w") as f:
        for row in predictions:
            fields = PREDICTION_FIELDS + tuple(k for k in OPTIONAL_FIELDS if k in row)
            f.write(json.dumps({k: row[k] for k in fields}) + "\n")

    scoring = scoring_notes(predictions, normalizer)
    for task, threshold in (thresholds or {}).items():
        scoring.setdefault(task, {})["threshold (chosen on dev)"] = f"{threshold:.4f}"
    doc = {
        "tasks": metrics,
        "instruction_splits": _split_scores(predictions, labels_by_task, normalizer),
        "confusion_matrices": _confusion_matrices(predictions),
        "scoring": scoring,
    }
    (out / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n")

    sections = [
        "# Evaluation report",
        "Scores are percentages; lower is better for `wer` and `cer`, higher for the rest.",
        "## Per task",
        task_table(doc["tasks"]),
        "## Seen vs held-out instructions",
        split_table(doc["instruction_splits"]),
    ]
    if scoring:
        sections += ["## How each task is scored", scoring_table(scoring)]
    if doc["confusion_matrices"]:
        sections += ["## Confusion matrices", _confusion_section(doc["confusion_matrices"], out)]
    if curves is not None and curves.series:
        sections += ["## Training curves", _curves_section(curves, out)]
    report = out / "report.md"
    report.write_text("\n\n".join(sections) + "\n")
    return report


def _split_scores(
    predictions: list[dict[str, Any]],
    labels_by_task: dict[str, list[str]] | None,
    normalizer: str,
) -> dict[str, dict[str, dict[str, float]]]:
    """Task -> split -> ``{"n", <primary metric>}``, recomputed on each split's rows."""
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in predictions:
        by_split[row["instruction_split"]].append(row)
    table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for split in SPLITS:
        for task, scores in score_records(by_split[split], labels_by_task, normalizer).items():
            primary = get_task(task).metric
            table[task][split] = {k: v for k, v in scores.items() if k in ("n", primary)}
    return dict(sorted(table.items()))


def _confusion_matrices(predictions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in predictions:
        if get_task(row["task"]).scoring == "label":
            pairs[row["task"]].append(
                (normalize_label(row["prediction"]), normalize_label(row["target"]))
            )
    matrices = {}
    for task, task_pairs in sorted(pairs.items()):
        preds, targets = zip(*task_pairs, strict=True)
        labels, matrix = confusion_matrix(preds, targets)
        matrices[task] = {"labels": labels, "matrix": matrix}
    return matrices


def _fmt(value: float) -> str:
    return f"{value:.{DECIMALS}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _cell(scores: dict[str, float], name: str | None) -> str:
    """A score, or ``-`` where the task has no headline metric or it was not computable (AUROC
    with one class only)."""
    return _fmt(scores[name]) if name in scores else "-"


def task_table(tasks: dict[str, dict[str, float]]) -> str:
    rows = []
    for task, scores in sorted(tasks.items()):
        primary = get_task(task).metric
        others = ", ".join(
            f"{name}={_fmt(value)}" for name, value in scores.items() if name not in ("n", primary)
        )
        rows.append([task, str(scores["n"]), primary or "-", _cell(scores, primary), others])
    return _table(["task", "n", "primary metric", "value", "other metrics"], rows)


def split_table(splits: dict[str, dict[str, dict[str, float]]]) -> str:
    rows = []
    for task, by_split in splits.items():
        primary = get_task(task).metric
        row = [task, primary or "-"]
        for split in SPLITS:
            scores = by_split.get(split)
            row += [str(scores["n"]), _cell(scores, primary)] if scores else ["0", "-"]
        rows.append(row)
    header = ["task", "metric"] + [f"{split} {col}" for split in SPLITS for col in ("n", "value")]
    return _table(header, rows)


def scoring_table(scoring: dict[str, dict[str, str]]) -> str:
    """Task -> what it was scored with (normaliser, BLEU tokeniser, head threshold)."""
    rows = [
        [task, ", ".join(f"{k}: {v}" for k, v in notes.items())] for task, notes in scoring.items()
    ]
    return _table(["task", "scored with"], rows)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def _confusion_section(matrices: dict[str, dict[str, Any]], out: Path) -> str:
    parts = []
    for task, cm in matrices.items():
        labels, matrix = cm["labels"], cm["matrix"]
        fig = _figure(1.2 + 0.6 * len(labels), 1 + 0.6 * len(labels))
        display = ConfusionMatrixDisplay(confusion_matrix=np.asarray(matrix), display_labels=labels)
        display.plot(ax=fig.add_subplot(), xticks_rotation="vertical", colorbar=False)
        fig.axes[0].set_title(task)
        png = Path("confusion") / f"{task}.png"
        _save(fig, out / png)
        rows = [[label, *map(str, counts)] for label, counts in zip(labels, matrix, strict=True)]
        parts += [
            f"### {task}",
            "Rows: reference, columns: prediction.",
            _table(["", *labels], rows),
            f"![{task} confusion matrix]({png.as_posix()})",
        ]
    return "\n\n".join(parts)


def _curve_family(name: str) -> str:
    """``val/asr/wer`` -> ``val/*/wer``: the tasks' series of one metric share a plot."""
    parts = name.split("/")
    return f"{parts[0]}/*/{parts[2]}" if len(parts) == 3 else name


def _ema(values: tuple[float, ...]) -> list[float]:
    smoothed, average = [], values[0]
    for value in values:
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed.append(average)
    return smoothed


def _curves_section(curves: TrainingCurves, out: Path) -> str:
    families: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(dict)
    for name, points in curves.series.items():
        families[_curve_family(name)][name] = points
    tasks = sorted({name.split("/")[1] for name in curves.series if name.count("/") == 2})
    palette = colormaps["tab20"].colors[0::2] + colormaps["tab20"].colors[1::2]  # dark first
    color = {task: palette[i % len(palette)] for i, task in enumerate(tasks)}
    links = []
    for family, series in families.items():
        fig = _figure(7, 4)
        ax = fig.add_subplot()
        smoothed = False
        for name, points in series.items():
            steps, values = zip(*points, strict=True)
            task = name.split("/")[1] if name.count("/") == 2 else None
            style = {"color": color[task], "label": task} if task else {"label": name}
            if len(points) < 50:
                ax.plot(steps, values, marker=".", **style)
                continue
            smoothed = True
            if task is None:
                ax.plot(steps, values, color="lightgrey", linewidth=0.8, label="raw")
                style["label"] = "moving average"
            ax.plot(steps, _ema(values), **style)
        values = [v for points in series.values() for _, v in points]
        if family.endswith("loss") and min(values) > 0 and max(values) > 10 * min(values):
            ax.set_yscale("log")  # label tasks end near 0.01, ASR near 0.5
        for step, stage in curves.stage_starts:
            ax.axvline(step, color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(
                stage if not stage.isdigit() else f"stage {stage}",
                (step, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
            )
        title = family + (f" (moving average, weight {SMOOTHING})" if smoothed else "")
        ax.set(xlabel="step", ylabel=family, title=title)
        if len(series) > 1 or smoothed:  # one colour per task in every plot
            ax.legend(fontsize=7, ncol=2 if len(series) > 6 else 1)
        png = Path("curves") / f"{family.replace('/*/', '_tasks_').replace('/', '_')}.png"
        _save(fig, out / png)
        links.append(f"![{family}]({png.as_posix()})")
    return "\n\n".join(links)
