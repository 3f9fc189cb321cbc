"""The keep-the-LLM step-cost benchmark runs every setting (tiny bases: wiring, not timing)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from keep_llm_step import SETTINGS, main  # noqa: E402


def test_every_setting_times_a_step_on_tiny_bases() -> None:
    rows = main(["--tiny", "--steps", "1", "--threads", "1"])
    assert [r["setting"] for r in rows] == list(SETTINGS)
    assert all(r["step_s"] > 0 for r in rows)
