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
