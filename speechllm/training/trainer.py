"""The Lightning trainer from config, and fitting: shared by speechllm-train and -train-text."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from speechllm.training.csv_logger import CSVLogger, RowBeforeCheckpoint
from speechllm.training.preemption import Preemption, exit_for_requeue
from speechllm.training.resume import ResumePoint


def build_trainer(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> L.Trainer:
    """The trainer with the config's preemption callback, ``extra_callbacks``, then the rest of
    the config's callbacks, and loggers.

    Hooks run in list order. A preemption stop is decided at a step's start before anything
    else acts on that step: were the curriculum first, it could enter a new stage (drawing a new
    adapter's initial weights) for a step that never runs, and the resumed run would enter it
    again from another random state. The curriculum (an extra) swaps the optimizer in
    ``on_train_batch_start``, so it comes before the other callbacks, or the LR monitor logs
    the old stage's rate at the new stage's first step. Lightning keeps this order (it only
    moves checkpoints last). Each appending CSV logger gets a :class:`RowBeforeCheckpoint`, so
    a kill after a step's checkpoint never loses that step's row.
    """
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    first = [c for c in callbacks if isinstance(c, Preemption)]
    rest = [c for c in callbacks if not isinstance(c, Preemption)]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    rows = [RowBeforeCheckpoint(lg) for lg in loggers if isinstance(lg, CSVLogger)]
    return instantiate(
        cfg.trainer,
        callbacks=first + list(extra_callbacks or []) + rest + rows,
        logger=loggers or False,
    )


def fit(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    start: ResumePoint | None = None,
) -> dict[str, float]:
    """Fit (continuing from ``start``) and return the final logged metrics as floats.

    A preempted fit exits with the requeue status (see ``preemption.py``).
    """
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger):  # rows past the checkpoint are logged again
            logger.rewind(start.step if start else 0)
    with exit_for_requeue(trainer):
        trainer.fit(module, datamodule=datamodule, ckpt_path=start.path if start else None)
    save_the_end(trainer)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def save_the_end(trainer: L.Trainer) -> None:
    """Write the finished run to ``last.ckpt``: periodic saves every n steps miss a run's last
    steps when ``max_steps`` is not a multiple of n, and an export of ``last.ckpt`` would then
    silently drop them (and a rerun would train them again)."""
    checkpoint = trainer.checkpoint_callback
    if trainer.interrupted or checkpoint is None or not checkpoint.save_last:
        return
    if checkpoint.dirpath is None:
        return
    trainer.save_checkpoint(Path(checkpoint.dirpath) / "last.ckpt")
