"""The sharded training stream: shards in, contract batches out, flat memory, exact resume.

A shard is anything read front to back in a fixed order (:class:`StreamShard`): a lhotse Shar
shard (:class:`speechllm.data.shards.Shard`) or one data file of a Hugging Face dataset
streamed with ``streaming=True`` (:class:`speechllm.data.hf_stream.HFShard`).

No per-item list exists anywhere: each dataloader worker reads its own shards one pool at a
time. Batch ``k`` of a rank is still a pure function of ``k``, as in the in-memory sampler::

    k ──► TaskMixture: task t (the same on every rank)
      └─► lane l = k mod N (N workers); this rank's lane g = rank*N + l of G = world*N lanes
    j = #draws of t among k' < k with k' mod N = l ──► batch j of lane g's stream of task t
    lane g's stream of t, epoch e: the task's shards permuted by (seed, t, e), every G-th one;
        a shard is read in pools of pool_size items; a pool is sorted by duration, packed into
        batches and those batches shuffled by (seed, t, e, shard, pool): a pool's batches depend
        on its own items only, so they are planned as the pool is read

The DataLoader takes batches round-robin from worker 0, so worker ``w`` of a loader started at
batch ``s`` serves lane ``(s + w) mod N``: a resumed run keeps every batch on its lane. Lanes
never share a shard within an epoch, so ranks and workers read disjoint data. A resumed worker
recounts ``j`` per task and fast-forwards: whole shards are passed over by reading only their
durations (a Shar cut list; a Hugging Face file's rows, audio headers only); inside the shard it
resumes in, skipped pools are read but not decoded.

Resume is exact for the same world size, worker count, seed and shards (the data module checks
these against the checkpoint). Memory per worker is one pool of encoded audio per task.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from lhotse.audio.utils import AudioLoadingError
from lhotse.cut import Cut
from torch.utils.data import IterableDataset, get_worker_info

from speechllm.data.audio import SpecAugment
from speechllm.data.cuts import entry_of
from speechllm.data.dataset import collate, make_item
from speechllm.data.errors import AudioError, DataError, unreadable
from speechllm.data.features import Featurizer
from speechllm.data.sampler import Batching, Schedule, TaskMixture, task_seed

MAX_STAGES = 32
"""Mixture stages the shared schedule table holds (a curriculum has a handful)."""

_Batch = list[tuple[Cut | DataError, str, int]]  # (cut with audio or bad row, shard, position)


class StreamShard(Protocol):
    """What the stream reads: a fixed sequence of items that can be passed over cheaply."""

    @property
    def source(self) -> str:
        """Names the shard (a file) in errors."""

    @property
    def seconds(self) -> float | None:
        """Audio seconds when known without reading (weighs tasks without a mixture)."""

    def durations(self) -> list[float]:
        """Every item's duration in order, without decoding audio (0 for a bad item)."""

    def read(self) -> Iterator[Cut | DataError]:
        """The items in order: cuts with encoded audio, or errors for bad ones (the stream
        locates them by shard and position)."""


class ShardStream(IterableDataset):
    """Endless contract batches of this rank from per-task shards (see the module doc).

    Args:
        shards: Shards by task (:func:`speechllm.data.shards.read_shards`,
            :func:`speechllm.data.hf_stream.hf_shards`).
        featurizer: The encoder's featurizer.
        batching: Batch caps; ``pool_size`` items are read, sorted and packed together.
        schedule: (first optimizer step, task weights) pairs; ``None`` weighs tasks by hours
            (by shard count where the shards do not know their hours).
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
        shards: Mapping[str, Sequence[StreamShard]],
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
                f"{world_size} x {self.workers} workers) that read disjoint shards; a Hugging "
                "Face dataset's shards are its data files: write smaller shards (speechllm-data "
                "shard --shard-size), split the dataset into more files, or use fewer workers"
            )
        if schedule is None:
            schedule = [(0, {t: _weight(self.shards[t]) for t in self.task_names})]
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
                shard, shard_seed = shards[int(number)], [seed, epoch, int(number)]
                if skip:
                    count = self._count(shard.durations(), shard_seed)
                    if skip >= count:
                        skip -= count
                        continue
                yield from self._read(shard, shard_seed, skip)
                skip = 0

    def _batches(self, durations: list[float], seed: list[int], pool: int) -> list[list[int]]:
        """One pool's batches as positions (0-based) in the pool."""
        rng = np.random.default_rng([*seed, pool])
        return self.batching.bucket(range(len(durations)), durations, rng)

    def _count(self, durations: list[float], seed: list[int]) -> int:
        """The number of batches of a shard whose items last ``durations``."""
        size = self.batching.pool_size
        return sum(
            len(self._batches(durations[start : start + size], seed, p))
            for p, start in enumerate(range(0, len(durations), size))
        )

    def _read(self, shard: StreamShard, seed: list[int], skip: int) -> Iterator[_Batch]:
        """A shard's batches from the ``skip``-th on, reading (and planning) pool by pool."""
        items, size = shard.read(), self.batching.pool_size
        for p in itertools.count():
            pool = list(itertools.islice(items, size))  # encoded audio, decoded per item later
            if not pool:
                return
            durations = [0.0 if isinstance(c, DataError) else c.duration for c in pool]
            batches = self._batches(durations, seed, p)
            if skip >= len(batches):
                skip -= len(batches)
                continue
            for batch in batches[skip:]:
                yield [(pool[i], shard.source, p * size + i + 1) for i in batch]
            skip = 0

    def _item(
        self, cut: Cut | DataError, shard: str, position: int, k: int
    ) -> dict[str, Any] | DataError:
        if isinstance(cut, DataError):  # a bad row its shard found while reading
            return self._bad(cut, shard, position)
        entry = entry_of(cut, shard, position)
        try:
            samples = cut.resample(self.featurizer.sampling_rate).load_audio()
            if samples.size == 0:
                raise AudioError("no samples", reason="empty_audio")
            if not np.isfinite(samples).all():
                raise AudioError("NaN or inf samples", reason="nan_audio")
        except (AudioLoadingError, RuntimeError, ValueError, OSError) as error:
            return self._bad(unreadable(error, cut.id), shard, position)
        waveform = torch.from_numpy(samples.mean(axis=0).astype(np.float32))
        seed = (self.seed * 1_000_003 + k) * 1_000_003 + zlib.crc32(cut.id.encode())
        return make_item(entry, waveform, self.featurizer, "seen", self.spec_augment, seed)

    def _bad(self, error: DataError, shard: str, position: int) -> DataError:
        """``error`` located at the item, returned to be counted under ``skip_bad``, else raised."""
        located = error.at(shard, position)
        if self.skip_bad:
            return located
        raise located from None


def _weight(shards: Sequence[StreamShard]) -> float:
    """A task's default mixture weight: its hours, or its shard count if they are unknown."""
    seconds = [s.seconds for s in shards]
    return float(len(shards)) if None in seconds else float(sum(seconds))
