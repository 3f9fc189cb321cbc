"""Every command's ``--help`` and first mistakes, as a new user meets them: through ``python -m``,
in a fresh folder, output read as text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechllm.testing import write_tiny_manifest

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bare_train_without_data_fails_in_one_line_and_leaves_no_folder(tmp_path: Path) -> None:
    done = run("speechllm.cli.train", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "speechllm-train: error: data.train_manifests: data/synthetic_small/train.jsonl does not "
        "exist; make it with `speechllm-synth out=data/synthetic_small`, or point training at "
        "your own manifests with 'data.train_manifests=[PATH]' (or paths.data_dir=DIR)"
    ]
    assert list(tmp_path.iterdir()) == []  # no runs/ folder left behind


@pytest.mark.parametrize("plus", ["", "+"])
def test_misspelt_key_says_did_you_mean_in_one_line(plus: str, tmp_path: Path) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 2)
    data = [f"data.train_manifests=[{manifest}]", "data.val_manifests=[]"]
    done = run("speechllm.cli.train", f"{plus}downsampler.stride=[2]", *data, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("speechllm-train: error: downsampler.stride: ")
    assert "did you mean 'strides'?" in line
    assert not (tmp_path / "runs").exists()


def test_train_help_tells_where_runs_go_and_how_they_resume(tmp_path: Path) -> None:
    out = run("speechllm.cli.train", "--help", cwd=tmp_path).stdout
    assert "runs/<name>/" in out and "resume=auto" in out
    assert "resume with ckpt_path" not in out


def test_synth_help_is_ours(tmp_path: Path) -> None:
    out = run("speechllm.cli.synth", "--help", cwd=tmp_path).stdout
    assert out.startswith("speechllm-synth: synthesise the offline multitask speech benchmark")
    assert "preset=tiny|small|medium|clinical" in out and "data/synthetic_small" in out
    assert "Powered by Hydra" not in out


def test_eval_help_lists_every_benchmark(tmp_path: Path) -> None:
    from speechllm.evaluation.benchmarks import BENCHMARKS, SUITES

    out = run("speechllm.cli.eval", "--help", cwd=tmp_path).stdout
    assert [name for name in [*BENCHMARKS, *SUITES] if name not in out] == []
    assert "benchmark=speechverse data_dir=DIR (suite: SpeechVerse's eleven tasks" in out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "module",
    ["speechllm.cli.train", "speechllm.cli.eval", "speechllm.cli.export", "speechllm.cli.infer",
     "speechllm.cli.synth", "speechllm.cli.fetch", "speechllm.cli.serve",
     "speechllm.cli.train_text"],
)  # fmt: skip
def test_help_does_not_load_torch(module: str, tmp_path: Path) -> None:
    """--help took 21 s (eval), 7 s (export, fetch, serve) importing torch and the models
    first."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "False", done.stderr


def test_serve_help_shows_defaults_but_never_the_api_key(tmp_path: Path) -> None:
    out = run(
        "speechllm.cli.serve", "--help", cwd=tmp_path, env={"SPEECHLLM_API_KEY": "s3cret-key"}
    ).stdout
    flat = " ".join(out.split())
    assert "TCP port (default: 8000)" in flat
    assert "(default: 8)" in flat and "(default: 127.0.0.1)" in flat
    assert "s3cret-key" not in out


def test_data_help_reads_as_text(tmp_path: Path) -> None:
    out = run("speechllm.cli.data", "--help", cwd=tmp_path).stdout
    assert "``" not in out
    assert "speechllm-data import hf" in out and "speechllm-data import nemo" in out


def test_eval_writes_only_under_out(tmp_path: Path) -> None:
    from speechllm.models.tiny import save_tiny_export

    export = save_tiny_export(tmp_path / "export")
    manifest = write_tiny_manifest(tmp_path / "data", 2, tasks=("asr",))
    work = tmp_path / "work"
    work.mkdir()
    args = [f"checkpoint={export}", f"manifest={manifest}", f"out={tmp_path / 'report'}"]
    done = run("speechllm.cli.eval", *args, "limit=1", "num_workers=0", cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(work.iterdir()) == []  # no runs/eval/<time>/eval.log
    assert {"report.md", "metrics.json", "eval.log"} <= {
        p.name for p in (tmp_path / "report").iterdir()
    }


def test_other_composition_errors_keep_hydras_short_report(tmp_path: Path) -> None:
    done = run("speechllm.cli.train", "encoder=no_such_encoder", cwd=tmp_path)
    assert done.returncode == 1
    assert "Could not find 'encoder/no_such_encoder'" in done.stderr
    assert "Traceback" not in done.stderr
