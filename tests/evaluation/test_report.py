import json
import re
from pathlib import Path
from typing import Any

import pytest

from speechllm.evaluation.report import (
    PREDICTION_FIELDS,
    TrainingCurves,
    load_csv_curves,
    write_report,
)
from speechllm.evaluation.scoring import score_records
from speechllm.tasks import get_task

# Lightning CSVLogger style: one sparse row per logging call; the curriculum logs `stage`.
METRICS_CSV = """step,stage,train/loss,train/lr,train/asr/loss,train/gr/loss,val/loss,val/asr/wer
9,1.0,2.5,0.001,2.5,,,
19,1.0,2.0,0.001,2.1,0.7,,
19,,,,,,1.9,40.0
29,2.0,1.5,0.001,1.4,0.5,,
39,2.0,1.2,0.001,,0.4,,
39,,,,,,1.1,25.0
"""


def _row(i: int, task: str, split: str, prediction: str, target: str) -> dict[str, Any]:
    return {
        "id": f"utt{i}",
        "task": task,
        "instruction": f"do {task}",
        "instruction_split": split,
        "prediction": prediction,
        "target": target,
        "extra": "not written",
    }


@pytest.fixture
def predictions() -> list[dict[str, Any]]:
    cases = [
        ("asr", "seen", "the cat sat", "the cat sat"),
        ("asr", "heldout", "a dog ran", "the dog ran"),
        ("er", "seen", "Happy", "happy"),
        ("er", "seen", "sad", "happy"),
        ("er", "heldout", "sad", "sad"),
        ("er", "heldout", "I think angry", "neutral"),
        ("sf", "seen", "date=today", "date=today; time=five pm"),
    ]
    return [_row(i, *case) for i, case in enumerate(cases)]


def _md_table(report: str, heading: str) -> list[list[str]]:
    """Body cells of the first table after ``heading``."""
    section = report.split(heading + "\n", 1)[1]
    lines = re.search(r"(\|.*\|\n?)+", section).group(0).strip().splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_load_csv_curves(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(METRICS_CSV)
    curves = load_csv_curves(path)
    assert set(curves.series) == {
        "train/loss",
        "train/asr/loss",
        "train/gr/loss",
        "val/loss",
        "val/asr/wer",
    }
    assert curves.series["train/gr/loss"] == [(19, 0.7), (29, 0.5), (39, 0.4)]
    assert curves.series["train/loss"] == [(9, 2.5), (19, 2.0), (29, 1.5), (39, 1.2)]
    assert curves.series["val/asr/wer"] == [(19, 40.0), (39, 25.0)]
    assert curves.stage_starts == [(9, "1"), (29, "2")]
    # the run config that speechllm.training.train logs beside metrics.csv names the stages
    stages = "".join(f"    {n}:\n      steps: 10\n" for n in ("align", "warmup", "multitask"))
    (tmp_path / "hparams.yaml").write_text(f"seed: 0\ncurriculum:\n  stages:\n{stages}")
    assert load_csv_curves(path).stage_starts == [(9, "warmup"), (29, "multitask")]
    # runs logged before stages were keyed by name listed them
    stages = "".join(f"  - name: {n}\n    steps: 10\n" for n in ("align", "warmup", "multitask"))
    (tmp_path / "hparams.yaml").write_text(f"seed: 0\ncurriculum:\n  stages:\n{stages}")
    assert load_csv_curves(path).stage_starts == [(9, "warmup"), (29, "multitask")]


def test_write_report(tmp_path: Path, predictions: list[dict[str, Any]]) -> None:
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    metrics = score_records(predictions)
    metrics["er"]["auroc"] = 75.0  # from label scores the rows do not carry
    report_path = write_report(
        tmp_path / "eval", predictions, metrics, load_csv_curves(tmp_path / "metrics.csv")
    )
    out = tmp_path / "eval"
    report = report_path.read_text()
    doc = json.loads((out / "metrics.json").read_text())

    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert rows == [{k: p[k] for k in PREDICTION_FIELDS} for p in predictions]

    # Every linked PNG exists, and the expected ones are linked.
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert set(links) >= {
        "confusion/er.png",
        "curves/train_loss.png",
        "curves/train_tasks_loss.png",  # every task's loss in one plot
        "curves/val_loss.png",
        "curves/val_tasks_wer.png",
    }
    assert len([link for link in links if link.startswith("curves/")]) == 4
    for link in links:
        assert (out / link).read_bytes().startswith(b"\x89PNG")

    # Per-task table: every number is the metrics.json value at 2 decimals.
    table = _md_table(report, "## Per task")
    assert [r[0] for r in table] == ["asr", "er", "sf"]
    assert doc["tasks"]["er"]["auroc"] == 75.0
    for task, n, primary, value, others in table:
        scores = doc["tasks"][task]
        assert primary == get_task(task).metric
        assert int(n) == scores["n"]
        assert value == f"{scores[primary]:.2f}"
        parsed = dict(item.split("=") for item in others.split(", "))
        assert parsed == {k: f"{v:.2f}" for k, v in scores.items() if k not in ("n", primary)}
    # Hand check of the numbers themselves: er targets happy x2, sad, neutral.
    assert doc["tasks"]["er"]["uar"] == pytest.approx(100 * (1 / 2 + 1 + 0) / 3)
    assert doc["tasks"]["asr"]["wer"] == pytest.approx(100 / 6)

    # Seen vs held-out: recomputed per split, rendered from the same dict.
    splits = doc["instruction_splits"]
    assert splits["asr"]["seen"] == {"n": 1, "wer": 0.0}
    assert splits["asr"]["heldout"] == pytest.approx({"n": 1, "wer": 100 / 3})
    assert splits["er"]["seen"]["uar"] == pytest.approx(50.0)
    for task, metric, seen_n, seen, heldout_n, heldout in _md_table(
        report, "## Seen vs held-out instructions"
    ):
        assert metric == get_task(task).metric
        for n, value, split in ((seen_n, seen, "seen"), (heldout_n, heldout, "heldout")):
            if split in splits[task]:
                assert (int(n), value) == (
                    splits[task][split]["n"],
                    f"{splits[task][split][metric]:.2f}",
                )
            else:
                assert (n, value) == ("0", "-")

    # Confusion matrix of the classification task only, off-label answers pooled.
    assert set(doc["confusion_matrices"]) == {"er"}
    cm = doc["confusion_matrices"]["er"]
    assert cm["labels"] == ["happy", "neutral", "sad", "(other)"]
    assert cm["matrix"] == [[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]]
    md = _md_table(report, "### er")
    assert [[int(c) for c in r[1:]] for r in md] == cm["matrix"]


def test_write_report_without_curves(tmp_path: Path, predictions: list[dict[str, Any]]) -> None:
    report = write_report(tmp_path, predictions, score_records(predictions)).read_text()
    assert "## Training curves" not in report
    assert not (tmp_path / "curves").exists()
    write_report(tmp_path / "empty", predictions, {}, TrainingCurves())
    assert "## Training curves" not in (tmp_path / "empty" / "report.md").read_text()
