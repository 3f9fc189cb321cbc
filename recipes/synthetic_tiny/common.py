"""Shared pieces of the synthetic_tiny demo: utterance grouping, noisy text forms, and the
bootstraps' options, time budget and training loop."""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from speechllm.data.manifest import ManifestEntry, read_manifests
from speechllm.training.schedule import warmup_decay

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
    """``steps`` optimizer steps or ``max_minutes`` of this process's CPU time, whichever ends
    first.

    CPU time, not wall time: on a shared machine the run does the same work, only later.
    """

    def __init__(self, steps: int, max_minutes: float | None) -> None:
        self.steps = steps
        self.seconds = 60.0 * max_minutes if max_minutes else None
        self.start = time.process_time()

    @property
    def elapsed(self) -> float:
        return time.process_time() - self.start

    def time_spent(self) -> float:
        """Share of the time budget spent (0 without one)."""
        return min(1.0, self.elapsed / self.seconds) if self.seconds else 0.0

    def progress(self, step: int) -> float:
        """Share of the run done before ``step``: by steps or by time, whichever is further."""
        return min(1.0, max(step / self.steps, self.time_spent()))

    def exhausted(self, step: int) -> bool:
        return step + 1 >= self.steps or self.time_spent() >= 1.0


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
    p.add_argument("--init", default=None, help="continue from a folder this script wrote")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p


def pretrain(
    name: str,
    params: list[nn.Parameter],
    batch_loss: Callable[[float], torch.Tensor],
    args: argparse.Namespace,
    log_every: int,
    smoothing: float,
) -> float:
    """Train ``params`` on ``batch_loss(progress)``, the next batch's loss at that share of the
    run, for ``args.steps`` or ``args.max_minutes``; returns the smoothed final loss.

    AdamW with the package's warm-up (5 % of the steps) and cosine decay to 5 % of
    ``args.lr``; the decay follows steps or time, whichever is further along, so a slow machine
    still ends its run at a low learning rate instead of mid-schedule.
    """
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    budget = Budget(args.steps, args.max_minutes)
    schedule = warmup_decay(
        optimizer,
        args.steps,
        warmup_steps=max(1, args.steps // 20),
        min_ratio=0.05,
        time_progress=budget.time_spent,
    )
    smooth = float("nan")
    bar = tqdm(range(args.steps), desc=f"{name} pretrain", unit="step", mininterval=5)
    for step in bar:
        loss = batch_loss(budget.progress(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        smooth = loss.item() if step == 0 else smoothing * smooth + (1 - smoothing) * loss.item()
        bar.set_postfix(loss=f"{smooth:.3f}", refresh=False)
        if step % log_every == 0:
            print(f"{name} step {step} loss {smooth:.4f} ({budget.elapsed:.0f} CPU s)", flush=True)
        if budget.exhausted(step):
            break
    print(
        f"{name}: {step + 1} steps, final loss {smooth:.4f}, {budget.elapsed:.0f} CPU s", flush=True
    )
    return smooth
