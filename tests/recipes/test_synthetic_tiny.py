"""The CPU demo's smoke preset runs every phase: synth, both bootstraps, the three curriculum
stages through ``speechllm.training.train.train``, export, evaluation and the report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "recipes" / "synthetic_tiny" / "run_demo.py"
STAGES = ["align", "lora_warmup", "multitask"]


def _column(rows: list[dict[str, str]], name: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[name])) for r in rows if r.get(name)]


def test_smoke_demo_runs_every_phase(tmp_path: Path) -> None:
    out, data = tmp_path / "demo", tmp_path / "data"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--preset",
            "smoke",
            "--out",
            str(out),
            "--data",
            str(data),
            "--threads",
            "1",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]

    # both bases were bootstrapped as Hugging Face folders
    for base in ("llm", "encoder"):
        assert (out / base / "config.json").is_file()
    # every stage ran, in order, for its configured length
    for index, name in enumerate(STAGES):
        assert f"[curriculum] stage {index} {name!r} started" in log
    stages = json.loads((out / "train" / "stages.json").read_text())
    assert [s["stage"] for s in stages] == STAGES
    assert [s["steps"] for s in stages] == [4, 3, 3]
    # the logged curves hold the stage index and a falling training loss
    with open(out / "train" / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {v for _, v in _column(rows, "stage")} == {0.0, 1.0, 2.0}
    asr = [v for _, v in _column(rows, "train/asr/loss")]
    assert min(asr[1:]) < asr[0], asr
    # the exported model was evaluated and the report written
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["tasks"]
    assert "## Per task" in (out / "eval" / "report.md").read_text()
    assert json.loads((out / "phases.json").read_text()).keys() == {
        "synth",
        "bootstrap",
        "train",
        "evaluate",
    }
