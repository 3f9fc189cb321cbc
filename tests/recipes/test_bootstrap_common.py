"""The bootstraps' schedule: the package's warm-up and decay, following steps or CPU time."""

from __future__ import annotations

import pytest
import torch

from speechllm.training.schedule import warmup_decay


def test_a_run_cut_short_by_time_still_ends_its_decay() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    spent = [0.0]  # share of the time budget, as Budget.time_spent reports it
    schedule = warmup_decay(
        optimizer, 100, warmup_steps=5, min_ratio=0.05, time_progress=lambda: spent[0]
    )
    lrs = []
    for share in (0.0,) * 10 + (0.5, 1.0):
        spent[0] = share
        optimizer.step()
        schedule.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[3] == 1.0  # the warm-up counts steps only
    assert 0.95 < lrs[9] < 1.0  # by steps, barely decayed
    assert lrs[10] == pytest.approx(0.05 + 0.95 * 0.5)  # half the time: half the cosine
    assert lrs[11] == pytest.approx(0.05)  # time is up: the floor
