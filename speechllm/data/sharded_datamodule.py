"""The data module of corpora too large for JSONL manifests: training streams shards
(:class:`~speechllm.data.streaming.ShardStream`), validation and test stay manifests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.features import Featurizer
from speechllm.data.hf_stream import HFSource, hf_shards
from speechllm.data.sampler import Schedule
from speechllm.data.shards import read_shards
from speechllm.data.streaming import ShardStream, StreamShard


class ShardedDataModule(SpeechDataModule):
    """:class:`SpeechDataModule` whose training stream reads shards (:class:`ShardStream`): Shar
    folders or Hugging Face datasets streamed file by file; validation and test stay JSONL
    manifests, which are small.

    The checkpoint keeps the stream's layout (world size, workers, seed, shards per task); a
    resume with another layout would draw other batches, so it fails instead.

    Args:
        featurizer: The encoder's featurizer.
        train_shards: Folder of ``<task>/`` Shar folders (``speechllm-data shard``).
        val_manifests: JSONL manifests for validation.
        test_manifests: JSONL manifests for testing.
        train_datasets: Instead of ``train_shards``: by task, a Hugging Face dataset read with
            ``load_dataset(..., streaming=True)`` and its column mapping
            (:class:`speechllm.data.hf_stream.HFSource`'s fields).
        pool_size: Items of encoded audio a worker holds per task, sorted and packed together.
        The other arguments are :class:`SpeechDataModule`'s.
    """

    def __init__(
        self,
        featurizer: Featurizer,
        train_shards: str | None = None,
        val_manifests: Sequence[str] = (),
        test_manifests: Sequence[str] = (),
        *,
        train_datasets: Mapping[str, Mapping[str, Any]] | None = None,
        max_batch_seconds: float = 200.0,
        max_batch_items: int | None = None,
        pool_size: int = 200,
        num_workers: int = 2,
        seed: int = 0,
        skip_bad: bool = False,
        spec_augment: bool = False,
        instruction_split: str = "seen",
        mixture_schedule: Schedule | None = None,
    ) -> None:
        super().__init__(
            featurizer,
            (),
            val_manifests,
            test_manifests,
            max_batch_seconds=max_batch_seconds,
            max_batch_items=max_batch_items,
            pool_size=pool_size,
            num_workers=num_workers,
            seed=seed,
            skip_bad=skip_bad,
            spec_augment=spec_augment,
            instruction_split=instruction_split,
            mixture_schedule=mixture_schedule,
        )
        if (train_shards is None) == (train_datasets is None):
            raise ValueError("give exactly one of train_shards and train_datasets")
        self.train_shards = train_shards
        self.train_datasets = (
            None
            if train_datasets is None
            else {task: HFSource.from_config(task, spec) for task, spec in train_datasets.items()}
        )
        self._shards: dict[str, list[StreamShard]] | None = None
        self._stream: ShardStream | None = None

    def set_mixture_schedule(self, schedule: Schedule) -> None:
        """:class:`~speechllm.data.datamodule.CurriculumData`'s call: the running stream
        follows the new schedule too."""
        super().set_mixture_schedule(schedule)
        if self._stream is not None:
            self._stream.set_schedule(self.mixture_schedule)

    def train_dataloader(self) -> DataLoader:
        """The endless sharded stream, resumed at ``global_step * accumulate_grad_batches``."""
        trainer = self.trainer
        accumulate = trainer.accumulate_grad_batches if trainer else 1
        self._stream = ShardStream(
            self.shards(),
            self.featurizer,
            self.batching,
            self.mixture_schedule,
            num_workers=self.num_workers,
            seed=self.seed,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            start_batch=trainer.global_step * accumulate if trainer else 0,
            accumulate_grad_batches=accumulate,
            skip_bad=self.skip_bad,
            spec_augment=self.spec_augment,
        )
        return DataLoader(
            self._stream,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def shards(self) -> dict[str, list[StreamShard]]:
        """The training shards by task, opened once (a hub dataset lists its files online)."""
        if self._shards is None:
            if self.train_datasets is not None:
                self._shards = dict(hf_shards(self.train_datasets))
            else:
                self._shards = dict(read_shards(self.train_shards))
        return self._shards

    def state_dict(self) -> dict[str, Any]:
        return self._layout()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict != self._layout():
            raise ValueError(
                f"the checkpoint's sharded stream {state_dict} differs from this run's "
                f"{self._layout()}: resume with the same devices, num_workers, seed and shards"
            )

    def _layout(self) -> dict[str, Any]:
        trainer = self.trainer
        return {
            "world_size": trainer.world_size if trainer else 1,
            "num_workers": self.num_workers,
            "seed": self.seed,
            "shards": {t: len(s) for t, s in self.shards().items()},
        }
