"""The README's tour runs as written, offline, from an empty folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"<!-- tested -->\s*```{language}\n(.*?)```", text, flags=re.S)


def test_readme_python_example_runs(tmp_path: Path) -> None:
    blocks = readme_blocks("python")
    assert blocks, "README lost its tested Python example"
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]


def test_readme_tour_runs(tmp_path: Path) -> None:
    blocks = readme_blocks("bash")
    assert blocks, "README lost its tested tour"
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    for block in blocks:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (tmp_path / "exports" / "tour" / "trainable.safetensors").exists()
    report = (tmp_path / "runs" / "tour" / "eval" / "report.md").read_text()
    assert "| asr |" in report
    text = (tmp_path / "runs" / "ck_frozen" / "eval" / "report.md").read_text()  # two-step, text
    assert "| diagnoses |" in text and "| department |" in text
    csv_path = (tmp_path / "runs" / "co_frozen" / "eval" / "report.md").read_text()  # CSV import
    assert "| diagnoses |" in csv_path and "| department |" not in csv_path
