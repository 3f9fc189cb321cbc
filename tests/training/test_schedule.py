"""The learning-rate schedule restarts with each curriculum stage and ends at its floor."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import pytest
import torch

from speechllm.config import compose
from speechllm.testing import tiny_batches
from speechllm.training import CurriculumCallback, warmup_decay
from speechllm.training.trainer import build_trainer
from tests.training.test_curriculum import STAGES as CURRICULUM_STAGES
from tests.training.tiny_world import FixedBatches, make_module

PEAK, WARMUP, MIN_RATIO = 1e-2, 2, 0.1
MAX_STEPS = 12
# test_curriculum's three stages, 4 and 3 fixed steps, then open (runs to max_steps, 5 steps)
STAGES = [dict(s, steps=n) for s, n in zip(CURRICULUM_STAGES, (4, 3, None), strict=True)]
BOUNDS = [(0, 4), (4, 7), (7, MAX_STEPS)]  # [first, end) optimizer steps of each stage
RESUME_STEP = 9  # inside the open stage


def factors(total_steps: int, warmup_steps: int, decay: str) -> list[float]:
    """The schedule's factor at each step of a fresh ``warmup_decay``, and two past its end."""
    schedule = warmup_decay(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0),
        total_steps,
        warmup_steps=warmup_steps,
        decay=decay,
        min_ratio=MIN_RATIO,
    )
    return [schedule.lr_lambdas[0](i) for i in range(total_steps + 2)]


@pytest.mark.parametrize("decay", ["cosine", "linear"])
@pytest.mark.parametrize(("total", "warmup"), [(5, 2), (10, 0), (100, 10), (2, 1)])
def test_warmup_decay_reaches_its_floor_at_the_last_step(
    total: int, warmup: int, decay: str
) -> None:
    """Factor ``i`` is the rate of the ``i``-th step, so the last step is ``total - 1``."""
    f = factors(total, warmup, decay)
    assert f[0] == pytest.approx(1 / warmup if warmup else 1.0)
    assert f[max(warmup - 1, 0)] == pytest.approx(1.0)  # the peak ends the warm-up
    assert f[total - 1] == pytest.approx(MIN_RATIO, rel=1e-9)  # the last step, not one later
    assert f[total:] == pytest.approx([MIN_RATIO] * 2)
    decaying = f[max(warmup - 1, 0) : total]
    assert all(a > b for a, b in zip(decaying, decaying[1:], strict=False))


def run(out: Path, ckpt_path: Path | None = None) -> Path:
    """A tiny three-stage run through ``build_trainer`` with the default callbacks (LR monitor
    included) and CSV logger; returns its ``metrics.csv``."""
    cfg = compose(
        [
            f"trainer.max_steps={MAX_STEPS}",
            "trainer.log_every_n_steps=1",
            "trainer.limit_val_batches=0",
            "trainer.deterministic=true",
            "+trainer.enable_model_summary=false",
            "callbacks.checkpoint.every_n_train_steps=3",
            "callbacks.progress.refresh_rate=0",
        ],
        output_dir=out,
    )
    module = make_module(lr=PEAK)
    module.scheduler_factory = partial(
        warmup_decay, warmup_steps=WARMUP, decay="cosine", min_ratio=MIN_RATIO
    )
    trainer = build_trainer(cfg, [CurriculumCallback(STAGES)])
    data = FixedBatches(tiny_batches(num_batches=6, batch_size=6, tasks=("asr", "ic"), seed=0))
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    assert trainer.global_step == MAX_STEPS
    return out / "logs" / "metrics.csv"


def logged_rates(metrics: Path) -> dict[int, float]:
    """The LR monitor's rate by step (one value: every parameter group shares the schedule)."""
    with open(metrics) as f:
        rows = [
            r for r in csv.DictReader(f) if any(k.startswith("lr-") and v for k, v in r.items())
        ]
    rates: dict[int, float] = {}
    for row in rows:
        values = {float(v) for k, v in row.items() if k.startswith("lr-") and v}
        assert len(values) == 1, row
        assert int(row["step"]) not in rates, f"step {row['step']} logged twice"
        rates[int(row["step"])] = values.pop()
    return rates


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("full")


@pytest.fixture(scope="module")
def full_rates(full_run: Path) -> dict[int, float]:
    return logged_rates(run(full_run))


def test_each_stage_starts_its_warm_up_and_ends_at_the_floor(full_rates: dict[int, float]) -> None:
    """The logged rate is the one each step trained at: the curriculum swaps the optimizer
    before the LR monitor reads it, and each stage's schedule spans exactly that stage."""
    assert sorted(full_rates) == list(range(MAX_STEPS))
    for first, end in BOUNDS:
        fresh = [PEAK * f for f in factors(end - first, WARMUP, "cosine")[: end - first]]
        # the first step: the new stage's warm-up start, not the previous stage's rate
        assert full_rates[first] == pytest.approx(fresh[0], rel=1e-6), f"step {first}"
        assert full_rates[end - 1] == pytest.approx(PEAK * MIN_RATIO, rel=1e-6), f"step {end - 1}"
        assert [full_rates[s] for s in range(first, end)] == pytest.approx(fresh, rel=1e-6)


def test_resume_in_the_open_stage_keeps_its_horizon(
    full_run: Path, full_rates: dict[int, float], tmp_path: Path
) -> None:
    """The open stage's horizon comes from its restored start, so a resumed run decays as the
    uninterrupted one did."""
    ckpt = full_run / "checkpoints" / f"step={RESUME_STEP}.ckpt"
    resumed = logged_rates(run(tmp_path, ckpt_path=ckpt))
    assert sorted(resumed) == list(range(RESUME_STEP, MAX_STEPS))
    for step, rate in resumed.items():
        assert rate == pytest.approx(full_rates[step], rel=1e-6), f"step {step}"
    assert resumed[MAX_STEPS - 1] == pytest.approx(PEAK * MIN_RATIO, rel=1e-6)
