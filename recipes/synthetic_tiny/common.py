"""Shared pieces of the synthetic_tiny demo: utterance grouping, noisy text forms, the
bootstraps' time budget and the per-stage log."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # so Hydra can locate ``recipes.synthetic_tiny.common``
    sys.path.insert(0, str(REPO))

from speechllm.data.manifest import ManifestEntry, read_manifests  # noqa: E402

"""``train-000123`` in ``train-000123-st-es``: the synthetic benchmark's utterance id."""

CTC_CHARS = " abcdefghijklmnopqrstuvwxyz'"
"""The encoder's CTC alphabet (index 0 is blank, then these characters)."""

PARALINGUISTIC = ("ac", "gr", "er", "sc", "sns")
"""Utterance-level tasks the encoder gets auxiliary heads for (train labels only)."""


@dataclass
class Utterance:
    """Every training label of one audio file, gathered from its manifest lines."""

    audio: str
    duration: float
    transcript: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    lines: list[ManifestEntry] = field(default_factory=list)


def utterances(manifest: str | Path) -> dict[str, Utterance]:
    """Group a manifest's lines by audio file (an asr line gives the transcript)."""
    grouped: dict[str, Utterance] = {}
    for entry in read_manifests([str(manifest)]):
        utt = grouped.setdefault(entry.audio, Utterance(entry.audio, entry.duration))
        utt.lines.append(entry)
        if entry.task == "asr":
            utt.transcript = entry.target
        elif entry.task in PARALINGUISTIC:
            utt.labels[entry.task] = entry.target
    for utt in grouped.values():  # anything with words is speech, even without an sns line
        if "sns" not in utt.labels and utt.transcript is not None:
            utt.labels["sns"] = "speech"
    return grouped


def label_sets(groups: Iterable[Utterance]) -> dict[str, list[str]]:
    """Sorted label set of each paralinguistic task."""
    found: dict[str, set[str]] = defaultdict(set)
    for utt in groups:
        for task, label in utt.labels.items():
            found[task].add(label)
    return {task: sorted(found[task]) for task in PARALINGUISTIC if found[task]}


LETTERS = "abcdefghijklmnopqrstuvwxyz "


def noisy(text: str, rng: random.Random, rate: float) -> str:
    """``text`` with characters dropped, doubled or substituted, each with chance ``rate``.

    A stand-in for what an imperfect audio front end hands the LLM: the bootstrap LLM learns to
    copy and repair, which is what stage 1 relies on.
    """
    out = []
    for ch in text:
        u = rng.random()
        if u < rate / 3:
            continue
        if u < 2 * rate / 3:
            out.append(ch + ch)
        elif u < rate:
            out.append(rng.choice(LETTERS))
        else:
            out.append(ch)
    return "".join(out)


class Budget:
    """Warm-up then cosine decay to 5 %, over ``steps`` or ``max_minutes``, whichever ends first.

    ``max_minutes`` counts this process's CPU time, not wall time: on a shared machine the run
    does the same work, only later. The decay follows ``max(step progress, time progress)``, so
    a slow machine still ends its run at a low learning rate instead of mid-schedule.
    """

    def __init__(self, steps: int, max_minutes: float | None, warmup_frac: float = 0.05) -> None:
        import time

        self.steps, self.seconds = steps, None if not max_minutes else 60.0 * max_minutes
        self.warmup = max(1, int(steps * warmup_frac))
        self._clock, self.start = time.process_time, time.process_time()

    @property
    def elapsed(self) -> float:
        return self._clock() - self.start

    def progress(self, step: int) -> float:
        done = (step - self.warmup) / max(1, self.steps - self.warmup)
        if self.seconds:
            done = max(done, self.elapsed / self.seconds)
        return min(1.0, done)

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * self.progress(step)))

    def exhausted(self, step: int) -> bool:
        return step + 1 >= self.steps or (self.seconds is not None and self.elapsed >= self.seconds)

    def set_lr(self, optimizer: torch.optim.Optimizer, base_lr: float, step: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = base_lr * self.lr_factor(step)


class StageLog(L.Callback):
    """Prints one line per finished stage (steps, wall time, mean training loss of its last
    steps) and writes them to ``stages.json``: the demo's per-stage log."""

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self._stage: tuple[int, str] | None = None
        self._start = (0, 0.0)
        self._losses: list[float] = []
        self.summary: list[dict[str, Any]] = []

    @staticmethod
    def _curriculum(trainer: L.Trainer) -> Any:
        return next(
            cb for cb in trainer.callbacks if hasattr(cb, "stages") and hasattr(cb, "progress")
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # after the curriculum's own batch-start hook: the stage that trained this batch
        curriculum = self._curriculum(trainer)
        stage = (curriculum.progress.index, curriculum.stage.name)
        step = trainer.global_step - 1  # the optimizer step this batch made
        if stage != self._stage:
            self._finish(step)
            self._stage, self._start, self._losses = stage, (step, self._clock()), []
            print(
                f"\n[curriculum] stage {stage[0]} {stage[1]!r} started at step {step}: "
                f"trainable {curriculum.stage.trainable}, tasks {sorted(curriculum.stage.tasks)}",
                flush=True,
            )
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(float(loss))

    def on_train_end(self, trainer, pl_module) -> None:
        self._finish(trainer.global_step)
        out = Path(trainer.default_root_dir) / "stages.json"
        out.write_text(json.dumps(self.summary, indent=2) + "\n")

    def _finish(self, step: int) -> None:
        if self._stage is None:
            return
        tail = self._losses[-20:] or [float("nan")]
        row = {
            "stage": self._stage[1],
            "steps": step - self._start[0],
            "seconds": round(self._clock() - self._start[1], 1),
            "first_loss": round(self._losses[0], 4) if self._losses else float("nan"),
            "final_loss": round(sum(tail) / len(tail), 4),
        }
        self.summary.append(row)
        print(
            f"\n[curriculum] stage {self._stage[1]!r} done: {row['steps']} steps in "
            f"{row['seconds']} s, train loss {row['first_loss']} -> {row['final_loss']} "
            "(mean of its last 20 steps)",
            flush=True,
        )
        self._stage = None


def bootstrap_parser(doc: str, what: str, steps: int, hidden_size: int) -> argparse.ArgumentParser:
    """The options both bootstraps share: data, output, budget, optimiser and model size."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="data/synthetic_small", help="benchmark folder (train.jsonl)")
    p.add_argument("--out", required=True, help=f"output folder ({what})")
    p.add_argument("--steps", type=int, default=steps, help="optimizer steps")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="CPU-time budget (this process): the schedule decays by max(step, time)\n"
        "progress and stops when either runs out (step counts are then machine-dependent)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--hidden-size", type=int, default=hidden_size)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    return p
