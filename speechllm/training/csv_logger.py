"""A CSV logger that a resumed run appends to, so ``metrics.csv`` holds each step once.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts; a requeued run
would lose every row logged before its preemption. This one keeps the file and, once the run
knows the step it resumes from, drops the rows the killed run logged at or after that step
(the resumed run logs them again). Rows are written as they are logged (``flush_logs_every_n_steps``
in ``conf/logger/csv.yaml``).

Lightning writes a step's checkpoint (in ``on_train_batch_end``) before it logs that step's
row, so a SIGKILL landing between the two would lose the row for good: the resumed run starts
after that step. :class:`RowBeforeCheckpoint` writes the row first; Lightning's own call for
the same row afterwards adds nothing and is skipped. When a new column appears, Lightning's
writer truncates the file and writes every row again; here the new file replaces the old one
atomically, and a row a kill left half-written is dropped when the run resumes.

Each row carries ``wall_time`` (Unix seconds when it was logged, as TensorBoard's events do):
steps alone cannot tell a slow stage, a stall or the gap of a preemption.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import lightning as L
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.apply_func import convert_tensors_to_scalars
from lightning.fabric.utilities.logger import _add_prefix
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from speechllm.training.checkpointing import atomic_write


class _AppendingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self._early: tuple[int, dict[str, Any]] | None = None  # (step, row) of log_early

    def _check_log_dir_exists(self) -> None:
        # keep metrics.csv (Lightning's writer deletes it here) and continue under its header,
        # without a last row a kill left half-written
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                text = f.read()
            complete = text[: text.rfind("\n") + 1]
            if complete != text and complete:
                atomic_write(complete.encode(), self.metrics_file_path)
            elif complete != text:  # not even the header is whole
                self._fs.rm_file(self.metrics_file_path)
            self.metrics_keys = next(csv.reader([complete.partition("\n")[0]]), [])

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            rows = list(csv.DictReader(f))
        atomic_write(_csv(fieldnames, rows), self.metrics_file_path)

    def log_metrics(self, metrics_dict: dict[str, Any], step: int | None = None) -> None:
        # a step's row written early by RowBeforeCheckpoint comes again from Lightning: keep
        # only what it adds (a value logged after the early write)
        if self._early is not None and step == self._early[0]:
            early = self._early[1]
            metrics_dict = {k: v for k, v in metrics_dict.items() if early.get(k, early) != v}
            if not set(metrics_dict) - {"epoch"}:
                return
        super().log_metrics(_timed(metrics_dict), step)

    def log_early(self, metrics: dict[str, Any], step: int) -> None:
        """Write a training step's row now, before Lightning would."""
        super().log_metrics(_timed(metrics), step)
        self._early = step, dict(metrics)

    def rewind(self, step: int) -> None:
        """Keep only the rows logged before ``step``; pending rows are dropped too."""
        self.metrics = []
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(float(r["step"])) < step]
        atomic_write(_csv(self.metrics_keys, rows), self.metrics_file_path)


WALL_TIME = "wall_time"
"""The column of each row's wall-clock time (Unix seconds)."""


def _timed(metrics: dict[str, Any]) -> dict[str, Any]:
    return {**metrics, WALL_TIME: round(time.time(), 3)}


def _csv(fieldnames: list[str], rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


class CSVLogger(LightningCSVLogger):
    """Lightning's ``CSVLogger`` that appends to the run folder's ``metrics.csv``.

    Args are Lightning's (``save_dir``, ``name``, ``version``, ``prefix``,
    ``flush_logs_every_n_steps``).
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def log_early(self, metrics: dict[str, Any], step: int) -> None:
        """Write a training step's row to the file now (see :class:`RowBeforeCheckpoint`)."""
        self.experiment.log_early(_add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR), step)
        self.save()

    @rank_zero_only
    def rewind(self, step: int) -> None:
        """Drop the rows logged at or after ``step``: the run continues from that step."""
        self.experiment.rewind(step)


class RowBeforeCheckpoint(L.Callback):
    """Writes each training step's row to ``logger`` before that step's checkpoint is saved.

    Lightning has no public hook between a step's metrics and its ``on_train_batch_end``
    checkpoint, so this reads the step's metrics as Lightning's logger connector will (private
    API, pinned by the lock) in ``on_train_batch_end``, which runs before any checkpoint
    callback's (Lightning moves those last).
    """

    def __init__(self, logger: CSVLogger) -> None:
        self.logger = logger

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        connector = trainer._logger_connector
        if trainer.fit_loop._should_accumulate() or not connector.should_update_logs:
            return
        metrics = convert_tensors_to_scalars(connector.metrics["log"])
        if metrics:  # as connector.log_metrics fills them in
            metrics.setdefault("epoch", trainer.current_epoch)
            self.logger.log_early(metrics, trainer.fit_loop.epoch_loop._batches_that_stepped)
