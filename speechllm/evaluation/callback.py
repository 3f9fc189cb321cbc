"""Task metrics of generated answers during training: ``val/<task>/<metric>`` beside the loss.

Loss says little about whether answers are right (a constrained label, a transcript's WER);
this decodes a few validation batches and scores them the way ``speechllm-eval`` does.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy

from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.manifest import ManifestEntry
from speechllm.evaluation.decoding import DecodingConfig, decode_batch
from speechllm.evaluation.run import keep_answers, languages, task_labels
from speechllm.evaluation.scoring import score_records
from speechllm.tasks import TASKS


class GenerationMetrics(L.Callback):
    """Decodes the first ``max_batches`` validation batches and logs per-task metrics.

    Under DDP each rank decodes its own batches; at validation end the records are gathered
    to every rank (``all_gather_object``, called by every rank once per scored validation,
    even with no records) and every rank scores the same records, so the logged values agree
    without a further reduction. Sharded models (FSDP) are refused: their
    ranks would have to generate in lockstep, and each rank's batches differ.

    Args:
        max_batches: Validation batches decoded per scored validation (per rank).
        every_n_validations: Score every n-th validation run (1: every run).
        decoding: Decoding settings; greedy with a 64-token cap by default.
    """

    def __init__(
        self,
        max_batches: int = 4,
        every_n_validations: int = 1,
        decoding: DecodingConfig | None = None,
    ) -> None:
        if max_batches < 1 or every_n_validations < 1:
            raise ValueError(
                "max_batches and every_n_validations must be >= 1, "
                f"got {max_batches} and {every_n_validations}"
            )
        self.max_batches = max_batches
        self.every_n_validations = every_n_validations
        self.decoding = decoding or DecodingConfig(max_new_tokens=64)
        self.labels_by_task: dict[str, list[str]] = {}
        self.entries: list[ManifestEntry] = []
        self.validations = 0
        self.records: list[dict[str, Any]] | None = None  # None: this validation is not scored

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        strategy = trainer.strategy
        if isinstance(strategy, (FSDPStrategy, ModelParallelStrategy)):
            raise ValueError(
                "GenerationMetrics cannot decode with a sharded model (FSDP); "
                "use DDP or leave callbacks=generation_metrics out"
            )

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.records = None
        if trainer.sanity_checking:
            return
        if self.validations % self.every_n_validations == 0:
            self.records = []
            self.entries = self._entries(trainer)
            self.labels_by_task = self._labels(self.entries, pl_module.model.heads)
        self.validations += 1

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.records is None or batch_idx >= self.max_batches or not batch["ids"]:
            return
        with trainer.precision_plugin.val_step_context():  # the autocast validation steps use
            records = decode_batch(pl_module.model, batch, self.decoding, self.labels_by_task)
        languages(records, self.entries)
        keep_answers(records, self.decoding)
        self.records += records

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.records is None:
            return
        records = self.records
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            gathered: list[list[dict[str, Any]]] = [[] for _ in range(trainer.world_size)]
            dist.all_gather_object(gathered, records)
            records = [record for rank_records in gathered for record in rank_records]
        for task, scores in score_records(records, self.labels_by_task).items():
            for name, value in scores.items():
                if name != "n":
                    pl_module.log(f"val/{task}/{name}", value, sync_dist=False)
        self.records = None

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self.validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.validations = state_dict["validations"]

    @staticmethod
    def _entries(trainer: L.Trainer) -> list[ManifestEntry]:
        datamodule = trainer.datamodule
        if isinstance(datamodule, SpeechDataModule) and "val" in datamodule.datasets:
            return datamodule.datasets["val"].entries
        return []

    @staticmethod
    def _labels(entries: list[ManifestEntry], heads: Any) -> dict[str, list[str]]:
        """Label sets from the validation manifests and heads, else the registry's defaults."""
        if entries:
            return task_labels(entries, heads)
        defaults = {name: list(task.labels) for name, task in TASKS.items() if task.labels}
        return defaults | task_labels([], heads)
