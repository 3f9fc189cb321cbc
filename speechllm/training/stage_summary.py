"""One line per finished curriculum stage, and ``stages.json`` beside the run's checkpoints."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

import lightning as L
import torch

from speechllm.training.curriculum import CurriculumCallback

log = logging.getLogger(__name__)


class StageSummary(L.Callback):
    """Prints each stage's optimizer steps, wall time and training loss (first batch, mean of
    its last ``tail`` batches) when it ends, and writes them all to
    ``<default_root_dir>/stages.json``.

    The per-step losses are in the logger already; this is the summary a user reads at the end
    of a run to see whether every stage ran and learned. Does nothing without a curriculum.
    """

    def __init__(self, tail: int = 20) -> None:
        self.tail = tail
        self.summary: list[dict[str, Any]] = []
        self._stage: tuple[int, str] | None = None
        self._start = (0, 0.0)
        # detached tensors, read once per stage: no device sync in the training step
        self._first: torch.Tensor | None = None
        self._last: deque[torch.Tensor] = deque(maxlen=tail)
        self._batch_step = 0
        self._closed: dict[str, Any] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # the optimizer step this batch contributes to (global_step only moves on the last
        # batch of an accumulation window)
        self._batch_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        curriculum = next(
            (cb for cb in trainer.callbacks if isinstance(cb, CurriculumCallback)), None
        )
        if curriculum is None:
            return
        # after the curriculum's batch-start hook: the stage that trained this batch
        stage = (curriculum.progress.index, curriculum.stage.name)
        step = self._batch_step
        if stage != self._stage:
            self._finish(step, trainer.is_global_zero)
            if not self._reopen(stage, step):
                self._stage, self._start = stage, (step, time.perf_counter())
                self._first, self._last = None, deque(maxlen=self.tail)
                self._say(
                    trainer.is_global_zero,
                    f"[curriculum] stage {stage[0]} {stage[1]!r} started at step {step}: "
                    f"trainable {curriculum.stage.trainable}, tasks "
                    f"{sorted(curriculum.stage.tasks)}",
                )
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:  # Lightning hands over the loss divided by the accumulation
            loss = loss.detach() * trainer.accumulate_grad_batches
            self._first = loss if self._first is None else self._first
            self._last.append(loss)

    def state_dict(self) -> dict[str, Any]:
        """The stages so far, kept in checkpoints: a resumed run's ``stages.json`` covers every
        stage, a stage cut by a restart (or by ``max_steps``, then raised) one row whose steps
        and seconds add up across processes (its final loss averages the batches after it)."""
        running = self._running() if self._stage is not None else self._closed
        return {"summary": self.summary, "running": running, "closed": self._stage is None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.summary = list(state.get("summary", []))
        running = state.get("running")
        if running is None:
            return
        if state.get("closed"):  # the last stage's row is written; it reopens if it goes on
            self._closed = running
            return
        self._open(running)

    def _running(self) -> dict[str, Any]:
        return {
            "stage": list(self._stage),
            "start_step": self._start[0],
            "seconds": time.perf_counter() - self._start[1],
            "first_loss": None if self._first is None else float(self._first),
        }

    def _open(self, running: dict[str, Any]) -> None:
        self._stage = (int(running["stage"][0]), str(running["stage"][1]))
        self._start = (int(running["start_step"]), time.perf_counter() - running["seconds"])
        first = running["first_loss"]
        self._first = None if first is None else torch.tensor(first)
        self._last = deque(maxlen=self.tail)

    def _reopen(self, stage: tuple[int, str], step: int) -> bool:
        """Continue the last written stage if this batch goes on with it (a run stopped by
        ``max_steps`` mid-stage and resumed with a later one)."""
        closed, self._closed = self._closed, None
        if closed is None or tuple(closed["stage"]) != stage:
            return False
        row = self.summary[-1] if self.summary else None
        if row is None or row["stage"] != stage[1] or closed["start_step"] + row["steps"] != step:
            return False
        self.summary.pop()
        self._open(closed)
        return True

    def on_train_end(self, trainer, pl_module) -> None:
        self._finish(trainer.global_step, trainer.is_global_zero)
        if trainer.is_global_zero and self.summary:
            out = Path(trainer.default_root_dir) / "stages.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(self.summary, indent=2) + "\n")

    @staticmethod
    def _say(rank_zero: bool, message: str) -> None:
        if rank_zero:
            log.info(message)

    def _finish(self, step: int, rank_zero: bool) -> None:
        if self._stage is None:
            return
        nan = float("nan")
        row = {
            "stage": self._stage[1],
            "steps": step - self._start[0],
            "seconds": round(time.perf_counter() - self._start[1], 1),
            "first_loss": round(float(self._first), 4) if self._first is not None else nan,
            "final_loss": round(float(torch.stack(list(self._last)).mean()), 4)
            if self._last
            else nan,
        }
        self.summary.append(row)
        self._closed = {**self._running(), "seconds": row["seconds"]}
        self._say(
            rank_zero,
            f"[curriculum] stage {row['stage']!r} done: {row['steps']} steps in "
            f"{row['seconds']} s, train loss {row['first_loss']} -> {row['final_loss']} "
            f"(mean of its last {self.tail} batches)",
        )
        self._stage = None
