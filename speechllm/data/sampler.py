"""Duration-bucketed batching, the infinite multitask training stream and the eval sampler.

Training batch ``k`` of a rank is a pure function of (seed, k, rank, world_size, schedule), so a
run resumed at batch ``k`` sees exactly the batches an uninterrupted run would have seen::

    k ──► optimizer step k // accumulate ──► task weights of that step's stage
      └─► uniform u_k (seed, k) ──► task t  (the same on every rank, so steps stay in sync)
    j = #draws of t before k ──► task stream batches [j*W, j*W + W) ──► rank r takes j*W + r

Each task stream is an endless sequence of epochs; an epoch shuffles the task's items, sorts
them by duration within pools and packs batches by padded duration, so every item is seen once
per epoch and ranks never share an item within one.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

Schedule = list[tuple[int, dict[str, float]]]
"""Mixture schedule: (first optimizer step, task weights) pairs."""

_BLOCK = 4096  # task draws are generated in blocks so counting past draws is vectorised


class ItemKey(NamedTuple):
    """What a batch sampler yields per item: the dataset index and the batch it belongs to, so
    per-item randomness (instruction, SpecAugment) is a function of the stream position."""

    index: int
    batch: int


@dataclass(frozen=True)
class Batching:
    """How items are grouped into batches."""

    max_batch_seconds: float = 200.0
    """Cap on padded audio per batch: items x longest item, in seconds."""
    max_batch_items: int | None = None
    """Optional cap on items per batch."""
    pool_size: int = 1000
    """Training items are sorted by duration within shuffled pools of this size: larger pools
    pad less, smaller pools mix durations across batches more."""

    def __post_init__(self) -> None:
        if not self.max_batch_seconds > 0:
            raise ValueError(f"max_batch_seconds must be > 0, got {self.max_batch_seconds}")
        if self.max_batch_items is not None and self.max_batch_items < 1:
            raise ValueError(f"max_batch_items must be >= 1, got {self.max_batch_items}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}")

    def pack(self, order: Sequence[int], durations: Sequence[float]) -> list[list[int]]:
        """Greedily cut ``order`` into consecutive batches within the caps.

        An item longer than ``max_batch_seconds`` gets a batch of its own rather than being lost.
        """
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for index in order:
            candidate = max(longest, durations[index])
            full = self.max_batch_items is not None and len(current) >= self.max_batch_items
            if current and (full or candidate * (len(current) + 1) > self.max_batch_seconds):
                batches.append(current)
                current, candidate = [], durations[index]
            current.append(index)
            longest = candidate
        if current:
            batches.append(current)
        return batches

    def bucket(
        self, indices: Sequence[int], durations: Sequence[float], rng: np.random.Generator
    ) -> list[list[int]]:
        """Dynamic batches of similar-duration items over one shuffled pass of ``indices``.

        Args:
            indices: Items to batch.
            durations: Duration in seconds of every item, indexed by item.
            rng: Shuffles the items and the batch order.
        """
        shuffled = rng.permutation(np.asarray(indices, dtype=np.int64)).tolist()
        batches: list[list[int]] = []
        for start in range(0, len(shuffled), self.pool_size):
            pool = sorted(shuffled[start : start + self.pool_size], key=durations.__getitem__)
            batches.extend(self.pack(pool, durations))
        return [batches[i] for i in rng.permutation(len(batches))]


def padding_efficiency(batches: Sequence[Sequence[int]], durations: Sequence[float]) -> float:
    """Real audio / padded audio over ``batches`` (1.0 means no padding)."""
    real = sum(durations[i] for batch in batches for i in batch)
    padded = sum(len(batch) * max(durations[i] for i in batch) for batch in batches)
    return real / padded


class _TaskStream:
    """The endless epoch-after-epoch batch sequence of one task."""

    def __init__(
        self, indices: list[int], durations: Sequence[float], batching: Batching, seed: int
    ) -> None:
        self.indices, self.durations, self.batching, self.seed = indices, durations, batching, seed
        self._starts = [0]  # index of the first batch of each epoch computed so far
        self._epoch, self._batches = -1, []

    def batch(self, position: int) -> list[int]:
        while position >= self._starts[-1]:
            epoch = len(self._starts) - 1
            self._load(epoch)
            self._starts.append(self._starts[-1] + len(self._batches))
        epoch = int(np.searchsorted(self._starts, position, side="right")) - 1
        self._load(epoch)
        return self._batches[position - self._starts[epoch]]

    def _load(self, epoch: int) -> None:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch, self._batches = (
                epoch,
                self.batching.bucket(self.indices, self.durations, rng),
            )


class TaskMixture:
    """Which task batch ``k`` draws: a uniform ``u_k`` from (seed, k) against the cumulative
    weights of step ``k // accumulate``'s stage, the same on every rank and in every process.

    Both training streams (the in-memory sampler and the sharded one) draw through it, so a
    curriculum mixes tasks identically whatever the data's storage.

    Args:
        task_names: Tasks that have data, in a fixed order (the draws index into it).
        schedule: (first optimizer step, {task: weight}) pairs; the first must start at step 0.
        seed: Seed of the draws.
        accumulate_grad_batches: Batches per optimizer step (stage switches follow steps).
    """

    def __init__(
        self,
        task_names: Sequence[str],
        schedule: Schedule,
        seed: int = 0,
        accumulate_grad_batches: int = 1,
    ) -> None:
        if accumulate_grad_batches < 1:
            raise ValueError("accumulate_grad_batches must be >= 1")
        self.task_names = list(task_names)
        self.seed, self.accumulate_grad_batches = seed, accumulate_grad_batches
        self.set_schedule(schedule)

    def set_schedule(self, schedule: Schedule) -> None:
        """Replace the mixture schedule."""
        steps, rows = [], []
        for step, weights in sorted(schedule, key=lambda stage: stage[0]):
            missing = sorted(t for t, w in weights.items() if w > 0 and t not in self.task_names)
            if missing:
                raise ValueError(
                    f"mixture weights at step {step} name task(s) {missing} with no training "
                    f"data; tasks with data: {self.task_names}"
                )
            row = np.array([float(weights.get(t, 0.0)) for t in self.task_names])
            if not np.isfinite(row).all() or (row < 0).any() or row.sum() <= 0:
                raise ValueError(f"mixture weights at step {step} must be >= 0 with a positive sum")
            cumulative = np.cumsum(row) / row.sum()
            cumulative[np.flatnonzero(row)[-1] :] = 1.0  # rounding must not reach a 0-weight task
            steps.append(step)
            rows.append(cumulative)
        if not steps or steps[0] != 0:
            raise ValueError("the mixture schedule must have a stage starting at step 0")
        self._steps = np.array(steps)
        self._cumulative = np.stack(rows)

    def tasks_of(self, ks: np.ndarray) -> np.ndarray:
        """Task index (into ``task_names``) of global batches ``ks``."""
        ks = np.asarray(ks, dtype=np.int64)
        u = np.empty(len(ks))
        for block in np.unique(ks // _BLOCK):
            hit = ks // _BLOCK == block
            u[hit] = np.random.default_rng([self.seed, block]).random(_BLOCK)[ks[hit] % _BLOCK]
        stage = np.searchsorted(self._steps, ks // self.accumulate_grad_batches, side="right") - 1
        return (u[:, None] >= self._cumulative[stage]).sum(axis=1)

    def draws_before(self, k: int, every: int = 1, phase: int = 0) -> np.ndarray:
        """Per task, how many of the batches ``k' < k`` with ``k' % every == phase`` draw it."""
        drawn = np.zeros(len(self.task_names), dtype=np.int64)
        for start in range(0, k, _BLOCK):
            ks = np.arange(start, min(k, start + _BLOCK))
            ks = ks[ks % every == phase]
            drawn += np.bincount(self.tasks_of(ks), minlength=len(self.task_names))
        return drawn


class MultitaskBatchSampler:
    """Endless training batches, one task per batch, mixed by a step-dependent schedule.

    Args:
        tasks: Task name of every dataset item.
        durations: Duration in seconds of every dataset item.
        batching: Batch caps.
        schedule: (first optimizer step, {task: weight}) pairs; the first must start at step 0.
            ``None`` weighs tasks by their hours of audio (the natural mixture).
        accumulate_grad_batches: Batches per optimizer step (stage switches follow steps).
        seed: Seed of the whole stream.
        rank: This process's rank.
        world_size: Number of processes; every rank gets one batch per ``k``.
        start_batch: First batch index to yield (resume position).
    """

    def __init__(
        self,
        tasks: Sequence[str],
        durations: Sequence[float],
        batching: Batching,
        schedule: Schedule | None = None,
        *,
        accumulate_grad_batches: int = 1,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_batch: int = 0,
    ) -> None:
        if len(tasks) != len(durations) or not tasks:
            raise ValueError("need one task and one duration per item, and at least one item")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world_size {world_size}")
        if accumulate_grad_batches < 1 or start_batch < 0:
            raise ValueError("accumulate_grad_batches must be >= 1 and start_batch >= 0")
        self.task_names = sorted(set(tasks))
        by_task: dict[str, list[int]] = {name: [] for name in self.task_names}
        for index, name in enumerate(tasks):
            by_task[name].append(index)
        self.streams = [
            _TaskStream(by_task[name], durations, batching, task_seed(seed, name))
            for name in self.task_names
        ]
        if schedule is None:
            hours = {name: sum(durations[i] for i in by_task[name]) for name in self.task_names}
            schedule = [(0, hours)]
        self.mixture = TaskMixture(self.task_names, schedule, seed, accumulate_grad_batches)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.start_batch = start_batch
        self._cursor, self._drawn = -1, np.zeros(len(self.task_names), dtype=np.int64)

    def set_schedule(self, schedule: Schedule) -> None:
        """Replace the mixture schedule; batches from the next one on follow it exactly."""
        self.mixture.set_schedule(schedule)
        self._cursor = -1

    def tasks_of(self, ks: np.ndarray) -> np.ndarray:
        """Task index (into ``task_names``) of global batches ``ks``, the same on every rank."""
        return self.mixture.tasks_of(ks)

    def batch(self, k: int) -> list[ItemKey]:
        """This rank's batch number ``k`` of the stream."""
        if k != self._cursor:  # random access: count each task's draws before k from scratch
            self._drawn = self.mixture.draws_before(k)
        task = int(self.tasks_of(np.array([k]))[0])
        position = int(self._drawn[task]) * self.world_size + self.rank
        self._drawn[task] += 1
        self._cursor = k + 1
        return [ItemKey(i, k) for i in self.streams[task].batch(position)]

    def __iter__(self) -> Iterator[list[ItemKey]]:
        k = self.start_batch
        while True:
            yield self.batch(k)
            k += 1


class EvalBatchSampler:
    """Every item exactly once, split round-robin over ranks; each rank runs its longest batch
    first (memory problems show at once), then the others in a fixed shuffled order, so that a
    prefix (``limit_val_batches``) samples every duration rather than only the longest clips.

    The batch count is made a multiple of ``world_size`` (by halving the largest batches) so every
    rank runs the same number of steps and collective ops cannot hang.

    Args:
        durations: Duration in seconds of every dataset item.
        batching: Batch caps.
        rank: This process's rank.
        world_size: Number of processes.
        tasks: Every item's task, for :meth:`only`.
    """

    def __init__(
        self,
        durations: Sequence[float],
        batching: Batching,
        rank: int = 0,
        world_size: int = 1,
        tasks: Sequence[str] | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world_size {world_size}")
        self.durations, self.batching = list(durations), batching
        self.rank, self.world_size = rank, world_size
        self.tasks = list(tasks) if tasks is not None else None
        self.batches = self._pack(list(range(len(self.durations))))

    def only(self, tasks: set[str] | None) -> None:
        """Batch only the items of ``tasks`` from now on (``None``: every item), packed afresh
        the same way on every rank, so ranks still run equal batch counts. A curriculum stage
        validates on its own tasks: ``limit_val_batches`` then counts batches it can score."""
        keep = range(len(self.durations))
        if tasks is not None:
            if self.tasks is None:
                raise ValueError("this sampler was built without the items' tasks")
            keep = [i for i in keep if self.tasks[i] in tasks]
        self.batches = self._pack(list(keep))

    def _pack(self, items: list[int]) -> list[list[int]]:
        if not items:
            return []
        durations, world_size = self.durations, self.world_size
        order = sorted(items, key=lambda i: (-durations[i], i))
        batches = self.batching.pack(order, durations)
        while len(batches) % world_size:
            largest = max(range(len(batches)), key=lambda b: len(batches[b]))
            batch = batches[largest]
            if len(batch) < 2:
                raise ValueError(
                    f"{len(items)} eval items cannot give each of {world_size} ranks a batch"
                )
            half = math.ceil(len(batch) / 2)
            batches[largest : largest + 1] = [batch[:half], batch[half:]]
        mine = batches[self.rank :: world_size]
        rest = np.random.default_rng(0).permutation(len(mine) - 1) + 1
        return [mine[0], *(mine[i] for i in rest)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[ItemKey]]:
        for batch in self.batches:
            yield [ItemKey(i, 0) for i in batch]


def task_seed(seed: int, name: str) -> int:
    """A per-task seed that does not depend on which other tasks have data."""
    return seed * 1_000_003 + zlib.crc32(name.encode())
