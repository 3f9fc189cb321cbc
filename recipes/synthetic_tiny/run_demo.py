"""The CPU demo, end to end: synthesise the benchmark, bootstrap tiny pretrained bases, train the
three-stage curriculum with ``speechllm.training.train.train``, evaluate on the test split.

::

    phase 1  synth       data/synthetic_small (espeak-ng; skipped when present)
    phase 2  bootstrap   <out>/llm  (tiny Llama, text forms of the train split)   ┐ in parallel,
                         <out>/encoder (Whisper encoder, CTC + utterance heads)    ┘ one thread each
    phase 3  train       <out>/train: experiment=synthetic_tiny (align -> lora_warmup -> multitask)
    phase 4  evaluate    <out>/eval: test.jsonl + test_heldout_instructions.jsonl -> report.md

    python recipes/synthetic_tiny/run_demo.py                  # full: ~20 min on 2 cores + synth
    python recipes/synthetic_tiny/run_demo.py --preset smoke   # CI: tiny everything, < 2 min
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import REPO  # noqa: E402,I001

TOY_BASE = [
    "--steps",
    "3",
    "--batch-size",
    "4",
    "--hidden-size",
    "32",
    "--layers",
    "2",
    "--heads",
    "2",
]
"""Bootstrap options of the smoke preset shared by both bases."""

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "synth": {"preset": "small", "n_train": 5000, "n_dev": 300, "n_test": 300},
        # CPU-minute budgets (one thread each): ~3,000 and ~2,300 steps on an idle core; the
        # encoder's dev probe is short, so it ends with the LLM's longer probes anyway
        "llm": ["--steps", "5000", "--max-minutes", "8.0"],
        "encoder": ["--steps", "3400", "--max-minutes", "8.0"],
        "train": [],
        "eval_limit": None,
        "max_new_tokens": 128,
    },
    "smoke": {  # every phase for real, at toy size: CI checks the wiring, not the quality
        "synth": {"preset": "tiny", "n_train": 60, "n_dev": 12, "n_test": 12, "workers": 1},
        "llm": [*TOY_BASE, "--intermediate-size", "64"],
        "encoder": TOY_BASE,
        "train": [
            "curriculum.stages.align.steps=4",
            "curriculum.stages.lora_warmup.steps=3",
            "trainer.max_steps=10",
            "trainer.val_check_interval=5",
            "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=1",
            "module.optimizer.lr=1.0e-2",
            "module.scheduler.warmup_steps=1",
            "callbacks.checkpoint.every_n_train_steps=5",
            "callbacks.progress.refresh_rate=1",
            "data.max_batch_items=8",
            "data.num_workers=0",
        ],
        "eval_limit": 16,
        "max_new_tokens": 16,
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--out", default="runs/demo", help="bootstrapped bases, training run, report")
    p.add_argument(
        "--data",
        default=None,
        help="benchmark folder (default data/synthetic_small, smoke: data/synthetic_tiny)",
    )
    p.add_argument("--experiment", default="synthetic_tiny", help="conf/experiment/<name>.yaml")
    p.add_argument(
        "--bases",
        default=None,
        help="folder with the bootstrapped llm/ and encoder/ (default: --out); point ablations\n"
        "at the main run's bases to compare like with like",
    )
    p.add_argument("--rebootstrap", action="store_true", help="redo bases that already exist")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training and eval")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for training")
    return p.parse_args(argv)


class Phases:
    """Times each phase and keeps the table printed at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn, *args, **kwargs):
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        print(f"=== {name}: {self.seconds[name]:.0f} s ===", flush=True)
        return result

    def table(self) -> str:
        rows = [f"| {name} | {s / 60:.1f} min |" for name, s in self.seconds.items()]
        return "\n".join(["| phase | wall |", "|---|---|", *rows])


def synthesise(data: Path, sizes: dict[str, Any]) -> None:
    if (data / "train.jsonl").is_file() and (data / "test_heldout_instructions.jsonl").is_file():
        print(f"{data} exists: reusing it")
        return
    from speechllm.synth import SynthConfig, generate

    report = generate(SynthConfig(out=str(data), **{"workers": 2, **sizes}))
    print(f"{report.audio_hours:.2f} h of audio, lines {report.lines}")


def bootstrap(data: Path, out: Path, preset: dict[str, Any], experiment: str, again: bool) -> None:
    """Both bases at once, one thread each; each writes a Hugging Face folder (the LLM's text
    forms follow ``experiment``'s prompt layout)."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    jobs = {}
    extra = {"llm": ["--experiment", experiment], "encoder": []}
    for name in ("llm", "encoder"):
        if (out / name / "config.json").is_file() and not again:
            print(f"{out / name} exists: reusing it (--rebootstrap to redo)")
            continue
        cmd = [
            sys.executable,
            str(HERE / f"bootstrap_{name}.py"),
            "--data",
            str(data),
            "--out",
            str(out / name),
            *preset[name],
            *extra[name],
        ]
        log = open(out / f"bootstrap_{name}.log", "w")  # noqa: SIM115 (closed below)
        print(f"{name}: {' '.join(cmd[1:])}  (log: {log.name})", flush=True)
        jobs[name] = (
            subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
            log,
            time.perf_counter(),
        )
    for name, (proc, log, start) in jobs.items():
        code = proc.wait()
        log.close()
        lines = Path(log.name).read_text().replace("\r", "\n").splitlines()
        summary = [line for line in lines if line.startswith(f"{name}:")] or lines[-3:]
        print(f"{name}: exit {code} after {time.perf_counter() - start:.0f} s")
        print("\n".join(f"  {line}" for line in summary))
        if code != 0:
            raise SystemExit(f"bootstrap of the {name} failed: see {log.name}")


def train_curriculum(
    data: Path, bases: Path, out: Path, args: argparse.Namespace, preset: dict[str, Any]
):
    """``speechllm.training.train.train`` on the experiment; returns the exported model's folder."""
    from speechllm.config import compose
    from speechllm.models.pretrained import export_checkpoint
    from speechllm.training.train import train

    cfg = compose(
        [
            f"experiment={args.experiment}",
            f"paths.data_dir={data}",
            f"paths.bootstrap_dir={bases}",
            *preset["train"],
            *args.overrides,
        ],
        output_dir=out / "train",
    )
    metrics = train(cfg)
    print("final logged metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    return export_checkpoint(out / "train" / "checkpoints" / "last.ckpt", out / "model")


def evaluate_model(
    model_dir: Path, data: Path, out: Path, limit: int | None, max_new_tokens: int
) -> dict[str, Any]:
    """Load the export as any user would (``SpeechLLM.from_pretrained``) and evaluate it."""
    from speechllm.evaluation.decoding import DecodingConfig
    from speechllm.evaluation.run import evaluate
    from speechllm.models import SpeechLLM

    model = SpeechLLM.from_pretrained(model_dir)

    curves = out / "train" / "logs" / "metrics.csv"
    return evaluate(
        model,
        [str(data / "test.jsonl"), str(data / "test_heldout_instructions.jsonl")],
        out / "eval",
        DecodingConfig(max_new_tokens=max_new_tokens),
        max_batch_seconds=240.0,  # big batches: generation on a CPU is overhead-bound
        limit=limit,
        curves_csv=str(curves) if curves.is_file() else None,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    data = Path(
        args.data or ("data/synthetic_small" if args.preset == "full" else "data/synthetic_tiny")
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    phases = Phases()
    phases.run("synth", synthesise, data, preset["synth"])
    bases = Path(args.bases or out)
    bases.mkdir(parents=True, exist_ok=True)
    phases.run("bootstrap", bootstrap, data, bases, preset, args.experiment, args.rebootstrap)

    import torch

    torch.set_num_threads(args.threads)
    model_dir = phases.run("train", train_curriculum, data, bases, out, args, preset)
    metrics = phases.run(
        "evaluate",
        evaluate_model,
        model_dir,
        data,
        out,
        preset["eval_limit"],
        preset["max_new_tokens"],
    )
    print("\n" + (out / "eval" / "report.md").read_text().split("## Confusion")[0])
    print(phases.table())
    timing = {name: round(s, 1) for name, s in phases.seconds.items()}
    (out / "phases.json").write_text(json.dumps(timing, indent=2))
    return metrics


if __name__ == "__main__":
    main()
