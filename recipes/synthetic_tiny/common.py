"""Shared pieces of the synthetic_tiny demo: utterance grouping, noisy text forms and the
bootstraps' options and time budget."""

from __future__ import annotations

import argparse
import math
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechllm.data.manifest import ManifestEntry, read_manifests

REPO = Path(__file__).resolve().parents[2]

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


def bootstrap_parser(
    doc: str, what: str, steps: int, hidden_size: int, lr: float
) -> argparse.ArgumentParser:
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
    p.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    p.add_argument("--hidden-size", type=int, default=hidden_size)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    return p
