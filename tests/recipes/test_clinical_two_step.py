"""The two-step clinical recipe (``recipes/clinical_two_step/run.py``): its smoke run."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_recipe_smoke_runs_all_three_arms(tmp_path) -> None:  # ~20 s: the recipe in CI
    module = runpy.run_path(str(ROOT / "recipes" / "clinical_two_step" / "run.py"))
    results = module["main"](["--smoke", "--out", str(tmp_path)])
    assert set(results) == {"none", "frozen", "trainable"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert all(set(saved[arm]) == {"symptoms", "department", "mean"} for arm in results)
    assert (tmp_path / "domain_text" / "adapters" / "domain" / "adapter_config.json").is_file()


def test_the_readme_speech_table_is_the_committed_real_run() -> None:
    module = runpy.run_path(str(ROOT / "recipes" / "clinical_two_step" / "run.py"))
    doc = json.loads((ROOT / module["RECORD"]).read_text())
    assert doc["command"].startswith("python recipes/clinical_two_step/run.py --real")
    assert doc["alignment"] == "recipes/synthetic_real/model" and set(doc["arms"]) == {
        "none",
        "frozen",
        "trainable",
    }
    readme = (ROOT / "recipes" / "clinical_two_step" / "README.md").read_text()
    block = readme.split("<!-- speech-real-table:start -->\n")[1].split(
        "\n<!-- speech-real-table:end -->"
    )[0]
    assert block == module["readme_table"](doc)


def test_the_readme_speech_prose_matches_the_real_run() -> None:
    """The single adapter wins the mean; frozen costs ~5 (symptoms) and ~17 (department),
    trainable ties on symptoms (within 1) and costs ~34 on department."""
    module = runpy.run_path(str(ROOT / "recipes" / "clinical_two_step" / "run.py"))
    arms = json.loads((ROOT / module["RECORD"]).read_text())["arms"]

    def cost(arm: str, task: str) -> float:
        return arms["none"][task] - arms[arm][task]

    assert all(arms["none"]["mean"] > arms[arm]["mean"] for arm in ("frozen", "trainable"))
    assert round(cost("frozen", "symptoms")) == 5 and round(cost("frozen", "department")) == 17
    assert abs(cost("trainable", "symptoms")) < 1 and round(cost("trainable", "department")) == 34
    assert arms["none"]["department"] == 100.0
