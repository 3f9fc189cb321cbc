"""Preemption: when the cluster says stop, checkpoint within a bounded time and exit "requeue".

Clusters preempt with SIGTERM and a grace period (SLURM also sends ``--signal=USR1@<s>`` before
the time limit). Under SLURM, Lightning installs its own auto-requeue handler for the requeue
signal (``SLURMEnvironment``: hpc checkpoint + ``scontrol requeue``), which is kept. Lightning's
SIGTERM handling stops without a checkpoint, cutting a validation short (a resumed run never
redoes it) and stopping mid-window under gradient accumulation; this callback replaces it::

    signal ──► request ──► next step's start (this step and its validation done, agreed
       │                   by every rank): SIGTERMException
       └─ abandon_after_s elapsed, and not inside the optimizer update:
                        └──► SIGTERMException now (the step is abandoned)
    SIGTERMException ──► on_exception: save <checkpoint dir>/last.ckpt ──► exit 75

An abandoned step leaves the weights, optimizer and schedule of the last finished step; the RNG
state saved is the one from that step's start, so the resumed run redoes the step exactly.
Exit status 75 is ``EX_TEMPFAIL`` (sysexits.h: temporary failure, retry): a job script loops
``until speechllm-train ...; [ $? -ne 75 ] && break; done`` or lets SLURM requeue.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from speechllm.training.rng import rng_state, set_rng_state

log = logging.getLogger(__name__)

REQUEUE_EXIT_CODE = 75
"""``EX_TEMPFAIL``: the run stopped for the cluster, not for a bug; start it again."""
LOGGING_STEP = "speechllm_logging_step"
"""Checkpoint key of a preempted run's logging step count (see ``Preemption``)."""


class Preemption(L.Callback):
    """Checkpoint and exit with a requeue status on SIGTERM and the configured signals.

    Args:
        signals: signals that mean "preempted" besides SIGTERM (``SIGUSR1``, ``SIGINT``...). A
            signal that already has a handler when training starts, as SLURM's requeue signal
            under Lightning's ``SLURMEnvironment(auto_requeue=True)``, keeps it.
        abandon_after_s: ``None`` finishes the current step; ``0`` abandons it at once; ``t``
            finishes it unless that takes longer than ``t`` seconds (a step abandoned in the
            optimizer update, which may not be cut, ends first).
        filename: the checkpoint written in the checkpoint callback's folder.
        exit_code: the process's exit status after the checkpoint.
    """

    def __init__(
        self,
        signals: list[str] | None = None,
        abandon_after_s: float | None = None,
        filename: str = "last.ckpt",
        exit_code: int = REQUEUE_EXIT_CODE,
    ) -> None:
        self.signals = [signal.Signals[s] for s in (signals or [])]
        if abandon_after_s is not None and abandon_after_s < 0:
            raise ValueError(f"abandon_after_s must be >= 0 or None, got {abandon_after_s}")
        self.abandon_after_s = abandon_after_s
        self.filename = filename
        self.exit_code = exit_code
        self.saved: str | None = None
        self.requested_at: float | None = None
        self._in_step = False  # forward/backward of a step: the part that may be abandoned
        self._step_rng: dict[str, Any] | None = None
        self._step_start = 0
        self._saving = False
        self._logging_step: int | None = None  # restored from a preemption checkpoint

    # ------------------------------------------------------------ signals
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registered its handlers just before this hook (it restores them at
        # teardown). Its SIGTERM handler is replaced: it stops mid-validation, whose metrics a
        # resumed run would then miss, and mid-window under gradient accumulation.
        for sig in [signal.SIGTERM, *self.signals]:
            current = signal.getsignal(sig)
            if sig != signal.SIGTERM and current not in (signal.SIG_DFL, signal.SIG_IGN, None):
                log.info("%s keeps its handler (SLURM auto-requeue)", sig.name)
                continue
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()
            log.warning("received %s: checkpointing and exiting", signal.Signals(signum).name)
            if self.abandon_after_s:
                signal.signal(signal.SIGALRM, lambda *_: self._abandon())
                signal.setitimer(signal.ITIMER_REAL, self.abandon_after_s)
        if self.abandon_after_s == 0:
            self._abandon()

    def _abandon(self) -> None:
        if self._in_step:
            raise SIGTERMException()

    # ------------------------------------------------------------ steps
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx % trainer.accumulate_grad_batches == 0:
            self._step_rng, self._step_start = rng_state(), trainer.global_step
            # the previous step, its validation and its logs are done: stop here, on every
            # rank at the same step (one rank may have been signalled first)
            stop = trainer.strategy.reduce_boolean_decision(
                self.requested_at is not None, all=False
            )
            if stop:
                raise SIGTERMException()
        if self._logging_step is not None:  # see on_save_checkpoint
            trainer.fit_loop.epoch_loop._batches_that_stepped = self._logging_step
            self._logging_step = None
        self._in_step = True

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any
    ) -> None:
        self._in_step = False

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        self._in_step = False

    # ------------------------------------------------------------ checkpoint
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self._step_rng is not None and trainer.global_step == self._step_start:
            set_rng_state(self._step_rng)  # an unfinished step is redone from its start
        folder = getattr(trainer.checkpoint_callback, "dirpath", None) or os.path.join(
            trainer.default_root_dir, "checkpoints"
        )
        path = os.path.join(folder, self.filename)
        self._saving = True
        try:
            trainer.save_checkpoint(path)
        finally:
            self._saving = False
        self.saved = path
        waited = time.monotonic() - (self.requested_at or time.monotonic())
        log.warning(
            "preempted at step %d: saved %s %.1f s after the signal; exit status %d (requeue)",
            trainer.global_step,
            path,
            waited,
            self.exit_code,
        )

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if not self._saving:
            return
        # The batch that was starting (or was abandoned) never began, as far as the saved
        # loop knows: Lightning then restores the state of a finished step, with its step
        # count, validation schedule and logging step, exactly.
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        for counts in (progress["total"], progress["current"]):
            counts["ready"] = counts["started"] = counts["processed"]
        # Lightning takes such a state at a validation boundary for a checkpoint saved before
        # the step count of the logs was advanced, and advances it again on restore: the
        # resumed run would log each step one too high. The count is put back at its first step.
        checkpoint[LOGGING_STEP] = trainer.fit_loop.epoch_loop._batches_that_stepped

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._logging_step = checkpoint.get(LOGGING_STEP)


@contextmanager
def exit_for_requeue(trainer: L.Trainer) -> Iterator[None]:
    """Turn a preempted ``fit`` (checkpoint saved) into ``SystemExit(exit_code)``."""
    try:
        yield
    except SIGTERMException:
        done = [c for c in trainer.callbacks if isinstance(c, Preemption) and c.saved]
        if not done:
            raise
        raise SystemExit(done[0].exit_code) from None
