"""The text-only two-step experiment (``recipes/clinical_two_step/text_smollm2.py``) and its
design check, at smoke size: a tiny random Llama instead of SmolLM2, every step and arm."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "clinical_two_step"


def test_design_check_runs_at_tiny_size(tmp_path: Path) -> None:  # seconds
    module = runpy.run_path(str(RECIPE / "design_check.py"))
    result = module["main"](["--tiny", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "design_check.json").read_text())
    assert saved["checks"] == result["checks"] and set(saved["checks"]) == {"learns", "knowledge"}
    for model in ("base", "domain"):
        assert set(saved["perplexity"][model]) == {"true", "wrong"}
    assert saved["perplexity"]["base"]["true"] != saved["perplexity"]["domain"]["true"]
    assert [point["step"] for point in saved["curve"]] == [1, 3]  # every 2 of 4 steps


def test_text_experiment_smoke_runs_all_three_arms(tmp_path: Path) -> None:  # ~10 s
    module = runpy.run_path(str(RECIPE / "text_smollm2.py"))
    doc = module["main"](["--smoke", "--out", str(tmp_path)])
    assert set(doc["results"]) == {"none", "frozen", "trainable"}
    saved = json.loads((tmp_path / "results.json").read_text())
    for arm in doc["results"]:
        tasks = saved["results"][arm][0]["tasks"]
        assert set(tasks) == {"department", "diagnoses"} and tasks["diagnoses"]["labels"] == 60
        curve = saved["results"][arm][0]["dev_curve"]  # dev loss after each of the 2 steps
        assert [point["step"] for point in curve] == [0, 1] and curve[0]["dev_loss"] > 0
    assert (tmp_path / "domain" / "adapters" / "domain" / "adapter_config.json").is_file()
    table = (tmp_path / "results.md").read_text()
    assert "| diagnoses (macro) |" in table and "± " in table  # mean ± spread over seeds


def test_the_readme_table_is_the_committed_results() -> None:
    module = runpy.run_path(str(RECIPE / "text_smollm2.py"))
    doc = json.loads((ROOT / module["RECORD_PATH"]).read_text())
    assert doc["commit"] and doc["machine"] and doc["command"].startswith("python ")
    assert doc["settings"]["seeds"] == [0, 1, 2] and set(doc["results"]) == set(module["ARMS"])
    readme = (RECIPE / "README.md").read_text()
    block = readme.split("<!-- smollm2-table:start -->\n")[1].split("\n<!-- smollm2-table:end -->")[
        0
    ]
    assert block == module["readme_table"](doc)


def test_the_readme_prose_matches_the_committed_results() -> None:
    """The single adapter wins every column for every seed, by 7-11 points on department,
    9-10 macro and 1-1.5 micro on diagnoses (means); the domain adapter's true statements end
    less than 1 % below the wrong ones in perplexity; the domain arms' last dev loss is lower."""
    module = runpy.run_path(str(RECIPE / "text_smollm2.py"))
    doc = json.loads((ROOT / module["RECORD_PATH"]).read_text())
    runs = doc["results"]

    def score(arm: str, task: str, metric: str) -> list[float]:
        return [run["tasks"][task][metric] for run in runs[arm]]

    def gap(arm: str, task: str, metric: str) -> float:
        return sum(score("none", task, metric)) / 3 - sum(score(arm, task, metric)) / 3

    for arm in ("frozen", "trainable"):
        for task, metric in module["COLUMNS"].values():
            pairs = zip(score("none", task, metric), score(arm, task, metric), strict=True)
            assert all(single > two_step for single, two_step in pairs)
        assert 7 <= gap(arm, "department", "auroc") <= 11
        assert 9 <= gap(arm, "diagnoses", "auroc") <= 10
        assert 1 <= gap(arm, "diagnoses", "micro_auroc") <= 1.5
        last = [run["dev_curve"][-1]["dev_loss"] for run in runs[arm]]
        assert sum(last) < sum(run["dev_curve"][-1]["dev_loss"] for run in runs["none"])
    domain = doc["design_check"]["perplexity"]["domain"]
    assert 0 < 1 - domain["true"] / domain["wrong"] < 0.01
