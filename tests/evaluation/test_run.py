"""evaluate(): a tiny trained export on seen and held-out manifests, report checked end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from speechllm.data.instructions import load_templates
from speechllm.data.manifest import ManifestEntry
from speechllm.evaluation.decoding import DecodingConfig
from speechllm.evaluation.report import SPLITS
from speechllm.evaluation.run import evaluate, task_labels
from speechllm.evaluation.scoring import score_task
from speechllm.models import SpeechLLM
from speechllm.tasks import get_task
from speechllm.testing import PARITY
from tests.tiny_run import TinyRun

DECODING = DecodingConfig(max_new_tokens=8)


@pytest.fixture(scope="module")
def model(tiny_run: TinyRun) -> SpeechLLM:
    return SpeechLLM.from_pretrained(tiny_run.export)


@pytest.fixture(scope="module")
def report(model: SpeechLLM, tiny_run: TinyRun, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report")
    manifests = [str(tiny_run.test), str(tiny_run.heldout)]
    return out, evaluate(model, manifests, out, DECODING, curves_csv=str(tiny_run.curves))


def read_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def manifest_ids(*manifests: Path) -> list[str]:
    return [json.loads(line)["id"] for m in manifests for line in m.read_text().splitlines()]


def table_cells(report_md: str, heading: str) -> list[list[str]]:
    """Body rows of the markdown table under ``## heading``."""
    section = report_md.split(f"## {heading}\n")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_writes_one_prediction_per_line_in_manifest_order(report, tiny_run: TinyRun) -> None:
    out, metrics = report
    rows = read_rows(out)
    assert [r["id"] for r in rows] == manifest_ids(tiny_run.test, tiny_run.heldout)
    assert all(r["prediction"] in PARITY for r in rows if r["task"] == "ic")  # constrained
    assert metrics == json.loads((out / "metrics.json").read_text())
    for name in (
        "report.md",
        "confusion/ic.png",
        "curves/val_tasks_wer.png",
        "curves/train_loss.png",
    ):
        assert (out / name).is_file(), name


def test_metrics_are_the_predictions_scored(report) -> None:
    out, metrics = report
    rows = read_rows(out)
    for task, scores in metrics["tasks"].items():
        task_rows = [r for r in rows if r["task"] == task]
        expected = score_task(
            task, [r["prediction"] for r in task_rows], [r["target"] for r in task_rows]
        )
        assert {k: v for k, v in scores.items() if k != "auroc"} == pytest.approx(expected)
    assert 0 <= metrics["tasks"]["ic"]["auroc"] <= 100  # from the label scores


def test_report_numbers_equal_metrics_json(report) -> None:
    out, metrics = report
    text = (out / "report.md").read_text()
    per_task = {row[0]: row for row in table_cells(text, "Per task")}
    assert set(per_task) == set(metrics["tasks"]) == {"asr", "ic"}
    for task, scores in metrics["tasks"].items():
        _, n, primary, value, others = per_task[task]
        assert (n, primary) == (str(scores["n"]), get_task(task).metric)
        assert value == f"{scores[primary]:.2f}"
        for name, shown in re.findall(r"(\w+)=([\d.-]+|nan)", others):
            assert shown == f"{scores[name]:.2f}"
    for task, *cells in table_cells(text, "Seen vs held-out instructions"):
        for k, split in enumerate(SPLITS):
            scores = metrics["instruction_splits"][task][split]
            assert cells[1 + 2 * k : 3 + 2 * k] == [
                str(scores["n"]),
                f"{scores[get_task(task).metric]:.2f}",
            ]


def test_heldout_lines_are_prompted_with_heldout_templates(report) -> None:
    out, metrics = report
    rows = read_rows(out)
    for row in rows:
        split = "heldout" if row["id"].endswith("-heldout") else "seen"
        assert row["instruction_split"] == split
        templates = load_templates(row["task"])[split]
        assert row["instruction"] in {t.format(labels=", ".join(PARITY)) for t in templates}
    for task, by_split in metrics["instruction_splits"].items():
        n = sum(r["task"] == task for r in rows) // 2
        assert by_split["seen"]["n"] == by_split["heldout"]["n"] == n


def test_default_split_and_limit(model: SpeechLLM, tiny_run: TinyRun, tmp_path: Path) -> None:
    metrics = evaluate(
        model, [str(tiny_run.test)], tmp_path, DECODING, instruction_split="heldout", limit=5
    )
    rows = read_rows(tmp_path)
    assert [r["id"] for r in rows] == manifest_ids(tiny_run.test)[:5]
    assert {r["instruction_split"] for r in rows} == {"heldout"}
    assert sum(scores["n"] for scores in metrics["tasks"].values()) == 5


def test_tasks_filter_keeps_only_those_lines(
    model: SpeechLLM, tiny_run: TinyRun, tmp_path: Path
) -> None:
    tasks = sorted({json.loads(line)["task"] for line in tiny_run.test.read_text().splitlines()})
    kept = tasks[:1]
    metrics = evaluate(model, [str(tiny_run.test)], tmp_path, DECODING, tasks=kept)
    assert set(metrics["tasks"]) == set(kept)
    expected = [
        json.loads(line)["id"]
        for line in tiny_run.test.read_text().splitlines()
        if json.loads(line)["task"] in kept
    ]
    assert [r["id"] for r in read_rows(tmp_path)] == expected
    with pytest.raises(ValueError, match="no lines"):
        evaluate(model, [str(tiny_run.test)], tmp_path, DECODING, tasks=["nope"])


def entry(task: str, labels: tuple[str, ...] | None, line: int) -> ManifestEntry:
    return ManifestEntry(f"u{line}", "a.wav", task, "x", 1.0, labels=labels, source="m", line=line)


def test_task_labels_from_manifest_else_registry() -> None:
    labels = task_labels([entry("asr", None, 1), entry("ic", ("a", "b"), 2), entry("gr", None, 3)])
    assert labels == {"ic": ["a", "b"], "gr": ["female", "male"]}
    with pytest.raises(ValueError, match="m:5: task 'ic'"):
        task_labels([entry("ic", ("a", "b"), 4), entry("ic", ("a", "c"), 5)])
