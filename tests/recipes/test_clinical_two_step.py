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
