"""Per-rank random streams: distinct per rank, reproducible, restored per rank."""

from __future__ import annotations

import logging

import torch

from speechllm.training.rng import restore_rank_rng, rng_state, seed_rank


def draws_after_seeding(rank: int) -> torch.Tensor:
    torch.manual_seed(7)  # what train() does on every rank before building
    seed_rank(rank)
    return torch.rand(4)


def test_ranks_get_distinct_reproducible_streams_and_rank_zero_keeps_its_own() -> None:
    streams = [draws_after_seeding(r) for r in range(3)]
    assert torch.equal(streams[1], draws_after_seeding(1))
    assert not torch.equal(streams[0], streams[1]) and not torch.equal(streams[1], streams[2])
    torch.manual_seed(7)
    assert torch.equal(streams[0], torch.rand(4))  # a single-process run is unchanged


def test_each_rank_restores_its_own_state_and_another_world_size_reseeds(caplog) -> None:
    states = []
    for rank in range(2):
        draws_after_seeding(rank)
        states.append(rng_state())
    expected = torch.rand(4)  # rank 1's next draws
    restore_rank_rng(states, rank=1, world=2)
    assert torch.equal(torch.rand(4), expected)
    restore_rank_rng(states[0], rank=0, world=1)  # a checkpoint from before per-rank states
    first = torch.rand(4)
    restore_rank_rng(states, rank=0, world=2)
    assert torch.equal(torch.rand(4), first)
    with caplog.at_level(logging.WARNING):
        restore_rank_rng(states, rank=1, world=3)
    assert "RNG states of 2 ranks" in caplog.text
