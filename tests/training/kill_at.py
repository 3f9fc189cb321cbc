"""A callback the FSDP kill test injects: SIGKILL the whole run as an optimizer step starts."""

import os
import signal

import lightning as L


class KillAt(L.Callback):
    """Rank 0 kills its process group (every rank, no checkpoint, no cleanup) at ``step``:
    what a node failure or an out-of-memory kill does to a run."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step and trainer.global_rank == 0:
            os.killpg(os.getpgrp(), signal.SIGKILL)
