"""The sharded training stream: Shar shards in, contract batches out, flat memory, exact resume.

No per-item list exists anywhere: each dataloader worker reads its own shards one pool at a
time. Batch ``k`` of a rank is still a pure function of ``k``, as in the in-memory sampler::

    k ──► TaskMixture: task t (the same on every rank)
      └─► lane l = k mod N (N workers); this rank's lane g = rank*N + l of G = world*N lanes
    j = #draws of t among k' < k with k' mod N = l ──► batch j of lane g's stream of task t
    lane g's stream of t, epoch e: the task's shards permuted by (seed, t, e), every G-th one;
        a shard is read in pools of pool_size items; a pool is sorted by duration, packed into
        batches and those batches shuffled by (seed, t, e, shard, pool)

The DataLoader takes batches round-robin from worker 0, so worker ``w`` of a loader started at
batch ``s`` serves lane ``(s + w) mod N``: a resumed run keeps every batch on its lane. Lanes
never share a shard within an epoch, so ranks and workers read disjoint data. A resumed worker
recounts ``j`` per task and fast-forwards: whole shards are passed over by reading only their
cut lists; inside the shard it resumes in, skipped pools are read but not decoded.

Resume is exact for the same world size, worker count, seed and shards (the data module checks
these against the checkpoint). Memory per worker is one pool of encoded audio per task.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from lhotse.audio.utils import AudioLoadingError
from lhotse.cut import Cut
from lhotse.lazy import LazyJsonlIterator
from lhotse.shar.readers.lazy import LazySharIterator
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from speechllm.data.audio import SpecAugment
from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.dataset import collate, make_item
from speechllm.data.errors import AudioError, DataError
from speechllm.data.features import Featurizer
from speechllm.data.sampler import Batching, Schedule, TaskMixture, task_seed
from speechllm.data.shards import Shard, entry_of, read_shards

MAX_STAGES = 32
"""Mixture stages the shared schedule table holds (a curriculum has a handful)."""

_Batch = list[tuple[Cut, str, int]]  # (cut with audio, shard, 1-based position)


class ShardStream(IterableDataset):
    """Endless contract batches of this rank from per-task Shar shards (see the module doc).

    Args:
        shards: Finished shards by task (:func:`speechllm.data.shards.read_shards`).
        featurizer: The encoder's featurizer.
        batching: Batch caps; ``pool_size`` items are read, sorted and packed together.
        schedule: (first optimizer step, task weights) pairs; ``None`` weighs tasks by hours.
        num_workers: The DataLoader's workers (lanes per rank); 0 means one lane in-process.
        seed: Seed of shard order, pools and per-item randomness.
        rank: This process's rank.
        world_size: Number of processes.
        start_batch: First batch index (resume position).
        accumulate_grad_batches: Batches per optimizer step (stage switches follow steps).
        skip_bad: Drop undecodable audio into ``bad_items`` instead of raising.
        spec_augment: Masks for log-mel features, or ``None``.
    """

    def __init__(
        self,
        shards: Mapping[str, Sequence[Shard]],
        featurizer: Featurizer,
        batching: Batching,
        schedule: Schedule | None = None,
        *,
        num_workers: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_batch: int = 0,
        accumulate_grad_batches: int = 1,
        skip_bad: bool = False,
        spec_augment: SpecAugment | None = None,
    ) -> None:
        if not 0 <= rank < world_size or start_batch < 0:
            raise ValueError(f"need 0 <= rank < world_size and start_batch >= 0, got {rank}")
        self.shards = {task: list(s) for task, s in sorted(shards.items())}
        self.task_names = list(self.shards)
        self.workers = max(num_workers, 1)
        lanes = world_size * self.workers
        few = {task: len(s) for task, s in self.shards.items() if len(s) < lanes}
        if few:
            raise ValueError(
                f"task(s) {few} have fewer shards than the {lanes} lanes (world_size "
                f"{world_size} x {self.workers} workers) that read disjoint shards: write "
                "smaller shards (speechllm-data shard --shard-size) or use fewer workers"
            )
        if schedule is None:
            schedule = [(0, {t: sum(s.seconds for s in self.shards[t]) for t in self.task_names})]
        self.featurizer, self.batching = featurizer, batching
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.start_batch, self.accumulate = start_batch, accumulate_grad_batches
        self.skip_bad, self.spec_augment = skip_bad, spec_augment
        # workers read the schedule from shared memory, so a stage the curriculum enters at
        # run time (a plateau) reaches them without restarting the loader
        self._table = torch.zeros(MAX_STAGES, 1 + len(self.task_names), dtype=torch.float64)
        self._table.share_memory_()
        self._version = torch.zeros(2, dtype=torch.int64).share_memory_()  # (version, rows)
        self.set_schedule(schedule)

    def set_schedule(self, schedule: Schedule) -> None:
        """Replace the mixture; workers follow it from their next batch on (batches already
        prefetched keep the old one, as in the in-memory sampler)."""
        TaskMixture(self.task_names, schedule)  # validate before publishing
        if len(schedule) > MAX_STAGES:
            raise ValueError(f"at most {MAX_STAGES} mixture stages, got {len(schedule)}")
        self._table.zero_()
        for row, (step, weights) in enumerate(schedule):
            self._table[row, 0] = step
            self._table[row, 1:] = torch.tensor([weights.get(t, 0.0) for t in self.task_names])
        self._version[1] = len(schedule)
        self._version[0] += 1

    def _mixture(self) -> TaskMixture:
        rows = self._table[: int(self._version[1])].tolist()
        schedule = [(int(r[0]), dict(zip(self.task_names, r[1:], strict=True))) for r in rows]
        return TaskMixture(self.task_names, schedule, self.seed, self.accumulate)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if workers != self.workers:
            raise RuntimeError(f"built for {self.workers} worker(s), run with {workers}")
        lane = (self.start_batch + worker) % workers
        first = self.start_batch + worker
        version, mixture = int(self._version[0]), self._mixture()
        drawn = mixture.draws_before(first, workers, lane)
        streams = [
            self._lane(task, self.rank * workers + lane, int(drawn[i]))
            for i, task in enumerate(self.task_names)
        ]
        for k in itertools.count(first, workers):
            if int(self._version[0]) != version:
                version, mixture = int(self._version[0]), self._mixture()
            task = int(mixture.tasks_of(np.array([k]))[0])
            yield collate(
                [self._item(cut, shard, pos, k) for cut, shard, pos in next(streams[task])]
            )

    def _lane(self, task: str, lane: int, skip: int) -> Iterator[_Batch]:
        """Lane ``lane``'s endless batches of ``task``, the first ``skip`` passed over."""
        shards, seed = self.shards[task], task_seed(self.seed, task)
        lanes = self.world_size * self.workers
        for epoch in itertools.count():
            for number in np.random.default_rng([seed, epoch]).permutation(len(shards))[
                lane::lanes
            ]:
                shard = shards[int(number)]
                durations = [c["duration"] for c in LazyJsonlIterator(shard.cuts)]
                plan = self._plan(durations, [seed, epoch, int(number)])
                count = sum(len(pool) for pool in plan)
                if skip >= count:
                    skip -= count
                    continue
                yield from self._read(shard, plan, skip)
                skip = 0

    def _plan(self, durations: list[float], seed: list[int]) -> list[list[list[int]]]:
        """Per pool, its batches as positions (0-based) in the shard."""
        size = self.batching.pool_size
        plan = []
        for p, start in enumerate(range(0, len(durations), size)):
            positions = range(start, min(start + size, len(durations)))
            rng = np.random.default_rng([*seed, p])
            plan.append(self.batching.bucket(positions, durations, rng))
        return plan

    def _read(self, shard: Shard, plan: list[list[list[int]]], skip: int) -> Iterator[_Batch]:
        """The planned batches of one shard from the ``skip``-th on, reading pool by pool."""
        cuts = iter(LazySharIterator(fields={"cuts": [shard.cuts], "recording": [shard.recording]}))
        size = self.batching.pool_size
        for p, batches in enumerate(plan):
            pool = list(itertools.islice(cuts, size))  # encoded audio, decoded per item later
            if skip >= len(batches):
                skip -= len(batches)
                continue
            for batch in batches[skip:]:
                yield [(pool[i - p * size], shard.recording, i + 1) for i in batch]
            skip = 0

    def _item(self, cut: Cut, shard: str, position: int, k: int) -> dict[str, Any] | DataError:
        entry = entry_of(cut, shard, position)
        try:
            samples = cut.resample(self.featurizer.sampling_rate).load_audio()
            if samples.size == 0:
                raise AudioError("no samples", reason="empty_audio")
            if not np.isfinite(samples).all():
                raise AudioError("NaN or inf samples", reason="nan_audio")
        except (AudioLoadingError, RuntimeError, ValueError, OSError) as error:
            if not isinstance(error, DataError):
                first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
                error = AudioError(
                    f"undecodable audio of {cut.id}: {first_line}", reason="unreadable"
                )
            located = error.at(shard, position)
            if self.skip_bad:
                return located
            raise located from None
        waveform = torch.from_numpy(samples.mean(axis=0).astype(np.float32))
        seed = (self.seed * 1_000_003 + k) * 1_000_003 + zlib.crc32(cut.id.encode())
        return make_item(entry, waveform, self.featurizer, "seen", self.spec_augment, seed)


class ShardedDataModule(SpeechDataModule):
    """:class:`SpeechDataModule` whose training stream reads Shar shards (:class:`ShardStream`);
    validation and test stay JSONL manifests, which are small.

    The checkpoint keeps the stream's layout (world size, workers, seed, shards per task); a
    resume with another layout would draw other batches, so it fails instead.

    Args:
        featurizer: The encoder's featurizer.
        train_shards: Folder of ``<task>/`` Shar folders (``speechllm-data shard``).
        val_manifests: JSONL manifests for validation.
        test_manifests: JSONL manifests for testing.
        pool_size: Items of encoded audio a worker holds per task, sorted and packed together.
        The other arguments are :class:`SpeechDataModule`'s.
    """

    def __init__(
        self,
        featurizer: Featurizer,
        train_shards: str,
        val_manifests: Sequence[str] = (),
        test_manifests: Sequence[str] = (),
        *,
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
        self.train_shards = train_shards
        self._stream: ShardStream | None = None

    def set_mixture_schedule(self, schedule: Schedule) -> None:
        super().set_mixture_schedule(schedule)
        if self._stream is not None:
            self._stream.set_schedule(self.mixture_schedule)

    def train_dataloader(self) -> DataLoader:
        """The endless sharded stream, resumed at ``global_step * accumulate_grad_batches``."""
        trainer = self.trainer
        accumulate = trainer.accumulate_grad_batches if trainer else 1
        self._stream = ShardStream(
            read_shards(self.train_shards),
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
            "shards": {t: len(s) for t, s in read_shards(self.train_shards).items()},
        }
