"""A CSV logger that a resumed run appends to, so ``metrics.csv`` holds each step once.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts; a requeued run
would lose every row logged before its preemption. This one keeps the file and, once the run
knows the step it resumes from, drops the rows the killed run logged at or after that step
(the resumed run logs them again). Rows are written as they are logged (``flush_logs_every_n_steps``
in ``conf/logger/csv.yaml``). Known gap: Lightning writes a step's checkpoint (in
``on_train_batch_end``) before it logs that step's row, so a SIGKILL landing between the two
loses that one row (``benchmarks/soak.py`` reports it); a preemption (SIGTERM) never does, as
it stops at the next step's start.
"""

from __future__ import annotations

import csv
import io

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from speechllm.training.checkpointing import atomic_write


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # keep metrics.csv (Lightning's writer deletes it here) and continue under its header
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = list(csv.DictReader(f).fieldnames or [])

    def rewind(self, step: int) -> None:
        """Keep only the rows logged before ``step``; pending rows are dropped too."""
        self.metrics = []
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            reader = csv.DictReader(f)
            rows = [r for r in reader if int(float(r["step"])) < step]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(text.getvalue().encode(), self.metrics_file_path)


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
    def rewind(self, step: int) -> None:
        """Drop the rows logged at or after ``step``: the run continues from that step."""
        self.experiment.rewind(step)
