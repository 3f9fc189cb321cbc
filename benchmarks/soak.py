"""Soak: a tiny run with many short stages, killed at random steps and requeued until done.

Each attempt is the same ``speechllm-train`` command in the same run folder (``resume=auto``,
as a requeued cluster job); the harness sends SIGKILL or SIGTERM (a preemption: checkpoint,
exit 75) when a random step has been logged. At the end the trainable weights must equal an
uninterrupted run's, and ``metrics.csv`` must hold each training step exactly once.

Usage::

    python benchmarks/soak.py [--kills 5] [--seed 0] [--out benchmarks/results/soak.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from speechllm.provenance import provenance
from speechllm.testing import write_tiny_manifest
from speechllm.training.preemption import REQUEUE_EXIT_CODE

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 24
# six stages of 4 steps (transitions at 4, 8, ..., 20), switching trainable groups and tasks
STAGES = [
    "curriculum.stages.align.steps=4",
    "curriculum.stages.lora_warmup.steps=4",
    "curriculum.stages.multitask.steps=4",
    "+curriculum.stages.lora_only={trainable: [lora], tasks: {ic: 1.0}, steps: 4}",
    "+curriculum.stages.realign={trainable: [downsampler], tasks: {asr: 1.0}, steps: 4}",
    "+curriculum.stages.joint={trainable: [downsampler, layer_weights, lora], tasks: {asr: 1.0}}",
]


def command(manifest: Path, run: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "speechllm.cli.train",
        "experiment=tiny_smoke",
        f"data.train_manifests=[{manifest}]",
        f"data.val_manifests=[{manifest}]",
        f"trainer.max_steps={MAX_STEPS}",
        *STAGES,
        "callbacks.checkpoint.every_n_train_steps=2",
        "callbacks.checkpoint.save_top_k=2",  # keep_last_k
        "trainer.val_check_interval=5",
        "callbacks.progress.refresh_rate=0",
        f"hydra.run.dir={run}",
    ]


def start(manifest: Path, run: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        command(manifest, run),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def logged_steps(run: Path) -> list[int]:
    """The steps of every ``train/loss`` row (a half-written last row is ignored)."""
    try:
        with open(run / "logs" / "metrics.csv", newline="") as f:
            return [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")]
    except (FileNotFoundError, ValueError, TypeError):
        return []


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def soak(manifest: Path, run: Path, kills: int, rng: random.Random) -> dict[str, int]:
    counts = {"attempts": 0, "sigkill": 0, "sigterm": 0, "exit_75": 0}
    bar = tqdm(total=kills, desc="kills")
    while True:
        counts["attempts"] += 1
        proc = start(manifest, run)
        victim = counts["sigkill"] + counts["sigterm"] < kills
        done = max(logged_steps(run), default=-1)
        # a signal 1 to 3 steps after the last logged one (its first step, if killed before)
        target = done + rng.randint(1, 3) if victim and done + 3 < MAX_STEPS - 1 else None
        while target is not None and proc.poll() is None:
            if max(logged_steps(run), default=-1) >= target:
                sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
                proc.send_signal(sig)
                counts["sigkill" if sig == signal.SIGKILL else "sigterm"] += 1
                bar.update()
                break
            time.sleep(0.01)
        _, err = proc.communicate(timeout=600)
        if proc.returncode == REQUEUE_EXIT_CODE:
            counts["exit_75"] += 1
        elif proc.returncode == 0:
            if target is None or max(logged_steps(run), default=-1) >= MAX_STEPS - 1:
                bar.close()
                return counts
        elif proc.returncode not in (-signal.SIGKILL, -signal.SIGTERM):  # before the handler
            raise RuntimeError(f"attempt failed ({proc.returncode}):\n{err[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5, help="signals sent in all")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill steps and signals")
    parser.add_argument("--out", default="benchmarks/results/soak.json")
    args = parser.parse_args()
    recorded = provenance("benchmarks/soak.py", sys.argv[1:])
    manifest = write_tiny_manifest(Path(tempfile.mkdtemp()), 48)
    work = Path(tempfile.mkdtemp())
    began = time.perf_counter()
    reference = subprocess.run(
        command(manifest, work / "reference"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
    )
    if reference.returncode != 0:
        raise RuntimeError(reference.stderr[-3000:])
    counts = soak(manifest, work / "soak", args.kills, random.Random(args.seed))
    expected, got = weights(work / "reference"), weights(work / "soak")
    max_diff = max(float((got[k] - v).abs().max()) for k, v in expected.items())
    steps = logged_steps(work / "soak")
    result = {
        **recorded,
        **counts,
        "max_steps": MAX_STEPS,
        "same_keys": set(expected) == set(got),
        "max_abs_weight_diff": max_diff,
        "steps_logged_once": steps == list(range(MAX_STEPS)),
        "steps_repeated": sorted({s for s in steps if steps.count(s) > 1}),
        "steps_missing": sorted(set(range(MAX_STEPS)) - set(steps)),
        "reference_steps_logged_once": logged_steps(work / "reference") == list(range(MAX_STEPS)),
        "checkpoints_kept": sorted(p.name for p in (work / "soak" / "checkpoints").iterdir()),
        "wall_s": round(time.perf_counter() - began, 1),
    }
    result["pass"] = result["same_keys"] and max_diff <= 1e-5 and result["steps_logged_once"]
    for key, value in result.items():
        print(f"{key:<22} {value}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
