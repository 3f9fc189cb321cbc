"""Non-finite losses are skipped and counted, a run of them stops training, NaN never saves."""

from __future__ import annotations

import math

import pytest
import torch

from speechllm.training.curriculum import CurriculumCallback
from tests.training.test_curriculum import STAGES, Recorder, snapshot
from tests.training.tiny_world import FixedBatches, make_module, make_trainer


def poisoned(batches, every: int) -> list[dict]:
    """Every ``every``-th batch carries a NaN sample, so its loss is NaN."""
    out = []
    for k, batch in enumerate(batches):
        batch = dict(batch, audio=batch["audio"].clone())
        if k % every == 0:
            batch["audio"][0, 100] = math.nan
        out.append(batch)
    return out


def test_nonfinite_steps_are_skipped_and_counted(batches) -> None:
    module = make_module()
    module.max_nonfinite_steps = 3
    curriculum = CurriculumCallback(STAGES[:1])
    recorder = Recorder(curriculum)
    before = snapshot(module)
    trainer = make_trainer(6, [curriculum, recorder])
    trainer.fit(module, datamodule=FixedBatches(poisoned(batches, every=3)))
    assert module.skipped_steps == 2  # batches 0 and 3 of 6
    assert trainer.callback_metrics["train/skipped_steps"] == 2
    for name, p in module.named_parameters():
        assert torch.isfinite(p).all(), name
    changed = [n for n, p in module.named_parameters() if not torch.equal(p, before[id(p)])]
    assert changed  # the finite steps trained


def test_a_run_of_nonfinite_steps_stops_with_a_clear_message(batches) -> None:
    module = make_module()
    module.max_nonfinite_steps = 2
    trainer = make_trainer(6, [CurriculumCallback(STAGES[:1])])
    with pytest.raises(RuntimeError, match="3 steps in a row had a non-finite loss"):
        trainer.fit(module, datamodule=FixedBatches(poisoned(batches, every=1)))


def test_checkpoint_with_nan_weights_is_refused(batches) -> None:
    module = make_module()
    with torch.no_grad():
        next(module.model.downsampler.parameters())[0] = math.nan
    checkpoint = {"state_dict": dict(module.state_dict())}
    with pytest.raises(RuntimeError, match="non-finite weights"):
        module.on_save_checkpoint(checkpoint)
