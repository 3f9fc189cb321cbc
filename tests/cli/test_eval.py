"""speechllm-eval on a checkpoint and on its export; --help of speechllm-eval and -infer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechllm.cli.eval import run
from speechllm.cli.infer import main as infer_main
from speechllm.config import compose
from tests.tiny_run import TinyRun

ROOT = Path(__file__).resolve().parents[2]


def test_checkpoint_and_its_export_evaluate_the_same(tiny_run: TinyRun, tmp_path: Path) -> None:
    common = [
        f"manifest=[{tiny_run.test},{tiny_run.heldout}]",
        "limit=8",
        "num_workers=0",
        "device=cpu",
        "decoding.max_new_tokens=6",
    ]
    results = {}
    for name, model in (("ckpt", tiny_run.checkpoint), ("export", tiny_run.export)):
        cfg = compose(
            config_name="eval", overrides=[f"checkpoint={model}", f"out={tmp_path / name}", *common]
        )
        results[name] = run(cfg)
        assert results[name] == json.loads((tmp_path / name / "metrics.json").read_text())
    assert results["ckpt"] == results["export"]
    # limit=8 takes the first 8 lines of each manifest (12 each): both splits are scored
    assert sum(s["n"] for s in results["ckpt"]["tasks"].values()) == 16
    rows = [json.loads(line) for line in (tmp_path / "ckpt" / "predictions.jsonl").open()]
    assert [r["instruction_split"] for r in rows] == ["seen"] * 8 + ["heldout"] * 8
    predictions = [(tmp_path / name / "predictions.jsonl").read_text() for name in results]
    assert predictions[0] == predictions[1]


def test_single_manifest_and_decoding_override(tiny_run: TinyRun, tmp_path: Path) -> None:
    cfg = compose(
        config_name="eval",
        overrides=[
            f"checkpoint={tiny_run.export}",
            f"manifest={tiny_run.test}",
            f"out={tmp_path}",
            "limit=3",
            "num_workers=0",
            "instruction_split=heldout",
            "decoding.num_beams=2",
            "decoding.max_new_tokens=4",
        ],
    )
    metrics = run(cfg)
    assert sum(scores["n"] for scores in metrics["tasks"].values()) == 3
    assert all(set(splits) == {"heldout"} for splits in metrics["instruction_splits"].values())


def test_help_of_eval_and_infer(capsys) -> None:
    out = subprocess.run(  # Hydra reads --help from the real command line
        [sys.executable, "-m", "speechllm.cli.eval", "--help"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Usage: speechllm-eval checkpoint=PATH manifest=PATH" in out
    assert "decoding:" in out and "callbacks:" not in out  # no training config groups
    assert "unseen=60" in out and "unseen: 0" in out  # the unseen tasks, off by default
    with pytest.raises(SystemExit) as exit_info:
        infer_main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: speechllm-infer" in out and "--stream" in out
