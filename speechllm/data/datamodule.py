"""The Lightning data module: manifests in, contract batches out, resumable and DDP-safe."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
from torch.utils.data import DataLoader

from speechllm.data.audio import SpecAugment
from speechllm.data.dataset import SpeechDataset, collate
from speechllm.data.errors import DataError
from speechllm.data.features import Featurizer
from speechllm.data.joint import with_joint_targets, with_transcripts
from speechllm.data.manifest import (
    MAX_ITEM_SECONDS,
    MIN_ITEM_SECONDS,
    ManifestEntry,
    limit_durations,
    read_manifests,
)
from speechllm.data.sampler import Batching, EvalBatchSampler, MultitaskBatchSampler, Schedule
from speechllm.data.text_items import MAX_TEXT_CHARS, check_text_format, read_text_items
from speechllm.tasks import get_task

log = logging.getLogger(__name__)


@runtime_checkable
class CurriculumData(Protocol):
    """A data module a curriculum can steer (``training.curriculum.CurriculumCallback``); one
    without these calls draws its own mixture and validates on every task."""

    def set_mixture_schedule(self, schedule: Schedule) -> None:
        """Draw tasks by ``schedule``: (first optimizer step, task weights) pairs, known ahead
        so batch ``k`` stays a pure function of ``k``."""

    def set_val_tasks(self, tasks: set[str] | None) -> None:
        """Validate only on these tasks' lines (``None``: all)."""


class SpeechDataModule(L.LightningDataModule, CurriculumData):
    """Training batches from an endless task mixture, eval batches ordered by duration.

    Needs ``Trainer(use_distributed_sampler=False)`` (the samplers shard by rank themselves) and,
    since the training stream is endless, ``max_steps`` with an integer ``val_check_interval``.

    Args:
        featurizer: The encoder's featurizer.
        train_manifests: JSONL manifests for training.
        val_manifests: JSONL manifests for validation (merged into one loader).
        test_manifests: JSONL manifests for testing (merged into one loader).
        max_batch_seconds: Cap on padded audio seconds per batch.
        max_batch_items: Optional cap on items per batch.
        pool_size: Items sorted together by duration when forming training batches.
        num_workers: DataLoader worker processes.
        seed: Seed of the training stream and of instruction sampling.
        skip_bad: Skip, count and report bad lines and audio instead of raising.
        min_item_seconds: Shorter lines are bad (``too_short``): the default is one 25 ms
            encoder frame, below which an encoder cannot produce an output.
        max_item_seconds: Longer lines are bad (``too_long``) or cut, as ``too_long`` says;
            this bounds the audio one item reads. ``None``: no cap.
        too_long: ``refuse`` or ``cut`` (see :func:`~speechllm.data.manifest.limit_durations`).
        spec_augment: SpecAugment training features (log-mel featurizers only).
        instruction_split: Template split for validation and test (``seen`` or ``heldout``).
        mixture_schedule: (first optimizer step, task weights) pairs; ``None`` weighs tasks by
            hours of audio. Usually set by the curriculum via :meth:`set_mixture_schedule`.
        joint_tasks: Tasks whose training lines with a transcript train on the joint target
            ``ASR: <transcript> | <task>: <answer>`` (:mod:`speechllm.data.joint`); validation
            keeps plain answers, which generation metrics score (``decoding.joint``).
        text_manifests: Text-only training items, task ``text`` (:mod:`speechllm.data.text_items`):
            ``.jsonl`` instruction/answer pairs or ``.txt`` lines to continue, drawn by the
            mixture's ``text`` weight; validation and test never hold them.
        max_text_chars: Longest text item (instruction and target) in characters; longer ones
            are bad (``too_long``). ``max_item_seconds`` bounds audio, so not these.
    """

    def __init__(
        self,
        featurizer: Featurizer,
        train_manifests: Sequence[str] = (),
        val_manifests: Sequence[str] = (),
        test_manifests: Sequence[str] = (),
        *,
        max_batch_seconds: float = 200.0,
        max_batch_items: int | None = None,
        pool_size: int = 1000,
        num_workers: int = 2,
        seed: int = 0,
        skip_bad: bool = False,
        min_item_seconds: float = MIN_ITEM_SECONDS,
        max_item_seconds: float | None = MAX_ITEM_SECONDS,
        too_long: str = "refuse",
        spec_augment: bool = False,
        instruction_split: str = "seen",
        mixture_schedule: Schedule | None = None,
        joint_tasks: Sequence[str] = (),
        text_manifests: Sequence[str] = (),
        max_text_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        super().__init__()
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        if spec_augment and not featurizer.is_log_mel:
            raise ValueError("spec_augment needs a log-mel (Whisper) featurizer")
        if instruction_split not in ("seen", "heldout"):
            raise ValueError(
                f"instruction_split must be seen or heldout, not {instruction_split!r}"
            )
        for path in text_manifests:
            check_text_format(path)
        if max_text_chars < 1:
            raise ValueError(f"max_text_chars must be >= 1, got {max_text_chars}")
        self.featurizer = featurizer
        self.text_manifests = list(text_manifests)
        self.max_text_chars = max_text_chars
        self.manifests = {
            "train": list(train_manifests),
            "val": list(val_manifests),
            "test": list(test_manifests),
        }
        self.batching = Batching(max_batch_seconds, max_batch_items, pool_size)
        self.num_workers = num_workers
        self.seed = seed
        self.skip_bad = skip_bad
        self.durations = {"min_seconds": min_item_seconds, "max_seconds": max_item_seconds}
        self.too_long = too_long
        self.spec_augment = SpecAugment() if spec_augment else None
        self.instruction_split = instruction_split
        self.joint_tasks = frozenset(get_task(task).name for task in joint_tasks)
        self.mixture_schedule = None if mixture_schedule is None else _plain(mixture_schedule)
        self.datasets: dict[str, SpeechDataset] = {}
        self._bad: dict[tuple[str | None, int | None, str], DataError] = {}
        self._train_sampler: MultitaskBatchSampler | None = None
        self._val_sampler: EvalBatchSampler | None = None
        self.val_tasks: set[str] | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read (once) the manifests the stage needs; text manifests only for training."""
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for split in splits.get(stage, ("train", "val", "test")):
            texts = self.text_manifests if split == "train" else []
            if split in self.datasets or not (self.manifests[split] or texts):
                continue
            on_error = self._record if self.skip_bad else None
            entries = read_manifests(self.manifests[split], on_error)
            taken = {entry.id: f"{entry.source}:{entry.line}" for entry in entries}
            entries = limit_durations(
                entries, **self.durations, too_long=self.too_long, on_error=on_error
            )
            entries = with_transcripts(entries)
            if split == "train":
                entries = with_joint_targets(entries, self.joint_tasks)
                entries += read_text_items(texts, on_error, taken, self.max_text_chars)
            self.datasets[split] = SpeechDataset(
                entries,
                self.featurizer,
                seed=self.seed,
                instruction_split="seen" if split == "train" else self.instruction_split,
                spec_augment=self.spec_augment if split == "train" else None,
                skip_bad=self.skip_bad,
                item_splits=split != "train",
                max_seconds=self.durations["max_seconds"],
            )

    def set_val_tasks(self, tasks: set[str] | None) -> None:
        """Validate only on these tasks' lines (``None``: all): a curriculum stage is judged
        on the tasks it trains, and ``limit_val_batches`` counts batches of them."""
        self.val_tasks = tasks
        if self._val_sampler is not None:
            self._val_sampler.only(tasks)

    def set_mixture_schedule(self, schedule: Schedule) -> None:
        """Set the task mixture; a training stream already running follows it from its next
        batch on (batches the workers already prefetched keep the old mixture)."""
        self.mixture_schedule = _plain(schedule)
        if self._train_sampler is not None:
            self._train_sampler.set_schedule(self.mixture_schedule)

    def train_dataloader(self) -> DataLoader:
        """The endless training stream, resumed at ``global_step * accumulate_grad_batches``."""
        dataset = self._dataset("train")
        trainer = self.trainer
        accumulate = trainer.accumulate_grad_batches if trainer else 1
        self._train_sampler = MultitaskBatchSampler(
            [entry.task for entry in dataset.entries],
            [entry.duration for entry in dataset.entries],
            self.batching,
            self.mixture_schedule,
            accumulate_grad_batches=accumulate,
            seed=self.seed,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            start_batch=trainer.global_step * accumulate if trainer else 0,
        )
        return _loader(dataset, self._train_sampler, self.num_workers, seed=self.seed)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Take the dropped items' errors out of the batch and count them."""
        for error in batch.pop("bad_items", []):
            self._record(error)
        return batch

    def bad_item_report(self) -> dict[str, list[str]]:
        """Skipped lines by reason, each as ``file:line: message``; every bad line once."""
        report: dict[str, list[str]] = {}
        for error in self._bad.values():
            report.setdefault(error.reason, []).append(str(error))
        return dict(sorted(report.items()))

    def _record(self, error: DataError) -> None:
        key = (error.source, error.line, error.reason)
        if key not in self._bad:
            log.warning("skipping bad item: %s", error)
            self._bad[key] = error

    def _dataset(self, split: str) -> SpeechDataset:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        if split not in self.datasets:
            raise ValueError(f"no {split} manifests were given")
        return self.datasets[split]

    def _eval_loader(self, split: str) -> DataLoader | list:
        if not self.manifests[split]:
            return []
        dataset = self._dataset(split)
        trainer = self.trainer
        sampler = EvalBatchSampler(
            [entry.duration for entry in dataset.entries],
            self.batching,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            tasks=[entry.task for entry in dataset.entries],
        )
        if split == "val":
            self._val_sampler = sampler
            sampler.only(self.val_tasks)
        return _loader(dataset, sampler, self.num_workers, seed=self.seed)


def eval_batches(
    entries: Sequence[ManifestEntry],
    featurizer: Featurizer,
    *,
    max_batch_seconds: float = 60.0,
    num_workers: int = 0,
    instruction_split: str = "seen",
) -> DataLoader:
    """Contract batches of ``entries`` for evaluation outside a training run.

    Each line is prompted from its own ``meta.instruction_split`` when it has one, else from
    ``instruction_split``; a bad line raises its :class:`DataError` (file and line), so every
    line is scored or the run stops saying which one could not be.
    """
    dataset = SpeechDataset(
        entries, featurizer, instruction_split=instruction_split, item_splits=True
    )
    sampler = EvalBatchSampler([e.duration for e in entries], Batching(max_batch_seconds))
    return _loader(dataset, sampler, num_workers, _collate_clean)


def _collate_clean(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`collate` without its (here always empty) ``bad_items``: the contract alone."""
    batch = collate(items)
    del batch["bad_items"]
    return batch


def _loader(
    dataset: SpeechDataset,
    sampler: Any,
    num_workers: int,
    collate_fn: Any = collate,
    seed: int = 0,
) -> DataLoader:
    """A loader with its own generator: each new iterator draws a base seed for its workers,
    and from the global generator that draw would shift the dropout masks that follow (a
    validation, or a resumed run's fresh iterator, would make training differ)."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(seed),
    )


class BadItemReport(L.Callback):
    """Logs the data module's skipped-item counts at the end of each validation run."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not isinstance(datamodule, SpeechDataModule):
            return
        report = datamodule.bad_item_report()
        if report:
            counts = ", ".join(f"{reason}={len(items)}" for reason, items in report.items())
            log.warning("skipped bad items so far: %s; details: %s", counts, report)


def _plain(schedule: Schedule) -> Schedule:
    """Plain Python values from a schedule that may come from OmegaConf."""
    return [
        (int(step), {str(t): float(w) for t, w in dict(weights).items()})
        for step, weights in schedule
    ]
