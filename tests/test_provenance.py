"""Results JSONs are stamped with the command, date, commit and machine that produced them."""

from __future__ import annotations

import re
from pathlib import Path

from speechllm.provenance import provenance

REPO = Path(__file__).resolve().parents[1]


def test_stamp_names_the_command_commit_and_machine() -> None:
    stamp = provenance(str(REPO / "benchmarks" / "keep_llm_step.py"), ["--steps", "2"])
    assert stamp["command"].endswith("benchmarks/keep_llm_step.py --steps 2")
    assert re.fullmatch(r"[0-9a-f]{40}", stamp["commit"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", stamp["date"])
    assert re.match(r"\d+ cores, \S", stamp["machine"])
