"""The OpenMP wait policy: set before torch loads unless the user set one, and the README's
figures are the committed benchmark's."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def policy_after_import(env: dict[str, str]) -> str:
    code = "import speechllm, os; print(os.environ['OMP_WAIT_POLICY'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return done.stdout.strip()


def test_passive_unless_the_user_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert policy_after_import(env) == "PASSIVE"
    assert policy_after_import({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_readme_figures_are_the_committed_results() -> None:
    result = json.loads((REPO / "benchmarks" / "results" / "thread_policy.json").read_text())
    steps = {(r["policy"], r["other_job"]): r["step_s"] for r in result["rows"]}
    readme = (REPO / "README.md").read_text()
    quoted = re.search(r"<!-- threads -->(.*?)<!-- /threads -->", readme, re.S).group(1)
    figures = [float(x) for x in re.findall(r"(\d+\.\d+) s", quoted)]
    expected = [steps[("default", True)], steps[("PASSIVE", True)]]
    assert figures == [*expected, steps[("default", False)], steps[("PASSIVE", False)]]
    assert result["date"] in readme and result["command"] in readme


def test_readme_commands_table_is_the_committed_results() -> None:
    module = runpy.run_path(str(REPO / "benchmarks" / "thread_policy.py"))
    result = json.loads((REPO / "benchmarks" / "results" / "thread_policy.json").read_text())
    assert {r["command"] for r in result["commands"]} == set(module["COMMANDS"])
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- thread-commands:start -->\n")[1].split(
        "\n<!-- thread-commands:end -->"
    )[0]
    assert block == module["commands_table"](result)
