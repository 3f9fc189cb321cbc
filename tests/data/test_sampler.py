from __future__ import annotations

from collections import Counter
from itertools import islice

import numpy as np
import pytest

from speechllm.data.sampler import (
    Batching,
    EvalBatchSampler,
    MultitaskBatchSampler,
    padding_efficiency,
)

RNG = np.random.default_rng(0)
DURATIONS = np.clip(RNG.lognormal(1.4, 0.6, 600), 1, 20).round(2).tolist()
TASKS = ["asr"] * 300 + ["ic"] * 200 + ["st"] * 100
BATCHING = Batching(max_batch_seconds=60.0, pool_size=200)


def _sampler(**kwargs) -> MultitaskBatchSampler:
    return MultitaskBatchSampler(TASKS, DURATIONS, BATCHING, **kwargs)


def _take(sampler: MultitaskBatchSampler, n: int) -> list[list[int]]:
    return [[key.index for key in batch] for batch in islice(sampler, n)]


def test_pack_respects_caps_and_keeps_overlong_items() -> None:
    batching = Batching(max_batch_seconds=10.0, max_batch_items=3)
    durations = [2.0, 2.0, 2.0, 2.0, 4.0, 30.0]
    assert batching.pack(range(6), durations) == [[0, 1, 2], [3, 4], [5]]


def test_bucketing_pads_less_than_random_batching() -> None:
    bucketed = BATCHING.bucket(range(600), DURATIONS, np.random.default_rng(1))
    shuffled = BATCHING.pack(np.random.default_rng(1).permutation(600).tolist(), DURATIONS)
    assert sorted(i for b in bucketed for i in b) == list(range(600))
    assert padding_efficiency(bucketed, DURATIONS) > 0.9
    assert padding_efficiency(shuffled, DURATIONS) < 0.75


def test_stream_is_deterministic_and_resumes_exactly() -> None:
    schedule = [(0, {"asr": 1.0, "ic": 1.0}), (5, {"st": 1.0, "asr": 1.0})]
    full = _take(_sampler(schedule=schedule, seed=3, accumulate_grad_batches=2), 40)
    assert full == _take(_sampler(schedule=schedule, seed=3, accumulate_grad_batches=2), 40)
    resumed = _sampler(schedule=schedule, seed=3, accumulate_grad_batches=2, start_batch=17)
    assert _take(resumed, 23) == full[17:]
    assert full != _take(_sampler(schedule=schedule, seed=4, accumulate_grad_batches=2), 40)


def test_ranks_get_disjoint_batches_of_the_same_task_and_cover_an_epoch() -> None:
    ranks = [_sampler(schedule=[(0, {"ic": 1.0})], rank=r, world_size=3) for r in range(3)]
    streams = [list(islice(s, 200)) for s in ranks]
    for k in range(200):
        assert len({TASKS[batch[0].index] for batch in (s[k] for s in streams)}) == 1
    one_epoch = BATCHING.bucket(range(300, 500), DURATIONS, np.random.default_rng(0))
    first = [
        i for s in streams for batch in s[: len(one_epoch) // 3] for i in (k.index for k in batch)
    ]
    assert len(first) == len(set(first))  # nothing shared between ranks within an epoch
    seen = {key.index for s in streams for batch in s for key in batch}
    assert seen == set(range(300, 500))  # and every ic item comes round


def test_mixture_weights_are_respected() -> None:
    sampler = _sampler(schedule=[(0, {"asr": 0.6, "ic": 0.3, "st": 0.1})])
    counts = Counter(TASKS[b[0]] for b in _take(sampler, 3000))
    assert counts["asr"] / 3000 == pytest.approx(0.6, abs=0.03)
    assert counts["st"] / 3000 == pytest.approx(0.1, abs=0.02)
    only_ic = _sampler(schedule=[(0, {"asr": 0.0, "ic": 1.0})])
    assert {TASKS[b[0]] for b in _take(only_ic, 300)} == {"ic"}


def test_schedule_switches_at_the_optimizer_step() -> None:
    schedule = [(0, {"asr": 1.0}), (10, {"st": 1.0})]
    batches = _take(_sampler(schedule=schedule, accumulate_grad_batches=4), 60)
    tasks = [TASKS[b[0]] for b in batches]
    assert set(tasks[:40]) == {"asr"} and set(tasks[40:]) == {"st"}


def test_live_schedule_change_matches_a_fresh_stream() -> None:
    old, new = [(0, {"asr": 1.0})], [(0, {"asr": 1.0}), (5, {"ic": 1.0, "st": 1.0})]
    sampler = _sampler(schedule=old)
    stream = iter(sampler)
    _ = [next(stream) for _ in range(8)]
    sampler.set_schedule(new)
    after = [[k.index for k in next(stream)] for _ in range(10)]
    assert after == _take(_sampler(schedule=new, start_batch=8), 10)


def test_schedule_errors_are_clear() -> None:
    with pytest.raises(ValueError, match=r"task\(s\) \['kws'\] with no training data"):
        _sampler(schedule=[(0, {"asr": 1.0, "kws": 0.5})])
    with pytest.raises(ValueError, match="step 0"):
        _sampler(schedule=[(3, {"asr": 1.0})])
    with pytest.raises(ValueError, match="positive sum"):
        _sampler(schedule=[(0, {"asr": 0.0})])


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_eval_sampler_covers_each_item_once_with_equal_batch_counts(world_size: int) -> None:
    samplers = [
        EvalBatchSampler(DURATIONS[:50], BATCHING, r, world_size) for r in range(world_size)
    ]
    assert len({len(s) for s in samplers}) == 1
    items = [key.index for s in samplers for batch in s for key in batch]
    assert sorted(items) == list(range(50))
    first = [key.index for key in next(iter(samplers[0]))]
    assert DURATIONS[first[0]] == max(DURATIONS[:50])  # longest first: OOM shows up at once


@pytest.mark.parametrize("world_size", [1, 2])
def test_eval_sampler_only_batches_the_stage_tasks_on_every_rank_alike(world_size: int) -> None:
    tasks = ["asr" if i % 3 == 0 else "er" for i in range(50)]
    samplers = [
        EvalBatchSampler(DURATIONS[:50], BATCHING, r, world_size, tasks=tasks)
        for r in range(world_size)
    ]
    for sampler in samplers:
        sampler.only({"asr"})
    assert len({len(s) for s in samplers}) == 1
    items = sorted(key.index for s in samplers for batch in s for key in batch)
    assert items == [i for i in range(50) if tasks[i] == "asr"]
    for sampler in samplers:
        sampler.only(None)
    assert sorted(key.index for s in samplers for b in s for key in b) == list(range(50))
    samplers[0].only({"kws"})
    assert len(samplers[0]) == 0 and list(samplers[0]) == []


def test_eval_sampler_prefix_samples_every_duration() -> None:
    """``limit_val_batches`` takes the first batches: they must not be only the longest clips."""
    batches = [[key.index for key in batch] for batch in EvalBatchSampler(DURATIONS, BATCHING)]
    prefix = [DURATIONS[i] for batch in batches[: len(batches) // 4] for i in batch]
    assert min(prefix) < np.median(DURATIONS) < max(prefix)
    again = [[key.index for key in batch] for batch in EvalBatchSampler(DURATIONS, BATCHING)]
    assert again == batches  # a fixed order: validation sees the same sample every time


def test_eval_sampler_refuses_fewer_items_than_ranks() -> None:
    with pytest.raises(ValueError, match="cannot give each of 4 ranks"):
        EvalBatchSampler([1.0, 2.0], BATCHING, 0, 4)
