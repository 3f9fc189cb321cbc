"""Preemption: when the cluster says stop, checkpoint within a bounded time and exit "requeue".

Clusters preempt with SIGTERM and a grace period (SLURM also sends ``--signal=USR1@<s>`` before
the time limit). Lightning already turns SIGTERM into a stop at the end of the current batch
(``SIGTERMException``, forwarded to every DDP rank) and, under SLURM, installs its own
auto-requeue handler (``SLURMEnvironment``: hpc checkpoint + ``scontrol requeue``) for the
requeue signal. This callback adds what is missing::

    signal ──► (after a validation under way) Lightning's SIGTERM handler (stop flag, DDP
       │            broadcast) ──► end of the batch: SIGTERMException
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
        self._trainer: L.Trainer | None = None
        self._stop_after_validation: Any = None

    # ------------------------------------------------------------ signals
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registered its handlers just before this hook; it restores them at teardown
        self._trainer = trainer
        handler = self._handler(signal.getsignal(signal.SIGTERM))
        for sig in [signal.SIGTERM, *self.signals]:
            current = signal.getsignal(sig)
            if sig != signal.SIGTERM and current not in (signal.SIG_DFL, signal.SIG_IGN, None):
                log.info("%s keeps its handler (SLURM auto-requeue)", sig.name)
                continue
            signal.signal(sig, handler)

    def _handler(self, lightning_sigterm: Any) -> Any:
        def stop() -> None:
            if callable(lightning_sigterm):
                lightning_sigterm(signal.SIGTERM, None)  # stop flag, DDP broadcast, children

        def handle(signum: int, frame: FrameType | None) -> None:
            if self.requested_at is None:
                self.requested_at = time.monotonic()
                log.warning("received %s: checkpointing and exiting", signal.Signals(signum).name)
                if self.abandon_after_s:
                    signal.signal(signal.SIGALRM, lambda *_: self._abandon())
                    signal.setitimer(signal.ITIMER_REAL, self.abandon_after_s)
            if self._trainer is not None and self._trainer.validating:
                # Lightning would cut the validation short, and a resumed run does not redo it:
                # its metrics would be missing. It is bounded (limit_val_batches): let it end.
                self._stop_after_validation = stop
                return
            stop()
            if self.abandon_after_s == 0:
                self._abandon()

        return handle

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._stop_after_validation is not None:
            self._stop_after_validation()
            self._stop_after_validation = None

    def _abandon(self) -> None:
        if self._in_step:
            raise SIGTERMException()

    # ------------------------------------------------------------ steps
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx % trainer.accumulate_grad_batches == 0:  # Lightning may stop mid-window
            self._step_rng, self._step_start = rng_state(), trainer.global_step
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
        trainer.save_checkpoint(path)
        self.saved = path
        waited = time.monotonic() - (self.requested_at or time.monotonic())
        log.warning(
            "preempted at step %d: saved %s %.1f s after the signal; exit status %d (requeue)",
            trainer.global_step,
            path,
            waited,
            self.exit_code,
        )


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
