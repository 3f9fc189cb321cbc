"""Runs that survive a cluster: SIGTERM mid-stage-2, requeue, auto-resume, a corrupt checkpoint."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import ClassVar

import lightning as L
import pytest
import torch

from speechllm.config import compose
from speechllm.testing import write_tiny_manifest
from speechllm.training import CurriculumCallback
from speechllm.training.checkpointing import AtomicCheckpointIO
from speechllm.training.preemption import REQUEUE_EXIT_CODE, Preemption
from speechllm.training.resume import ResumePoint
from speechllm.training.train import train
from speechllm.training.trainer import fit
from tests.training.test_curriculum import STAGES
from tests.training.test_train_cli import cli, data_overrides, finish, trainable
from tests.training.tiny_world import FixedBatches, make_module, make_trainer

# stage 1 (align) steps 0..2, stage 2 (lora_warmup) steps 3..8, stage 3 steps 9..11
STAGE2 = range(3, 9)


@pytest.fixture(scope="module")
def args(tmp_path_factory) -> list[str]:
    manifest = write_tiny_manifest(tmp_path_factory.mktemp("data"), 48)
    return [
        "experiment=tiny_smoke",
        *data_overrides(manifest),
        "trainer.max_steps=12",
        "curriculum.stages.lora_warmup.steps=6",
    ]


@pytest.fixture(scope="module")
def uninterrupted(args, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted")
    finish(cli(args, run))
    return run


def logged(run: Path) -> dict[tuple[int, str], float]:
    """Every cell of metrics.csv by (step, metric); a step logged twice would fail here."""
    cells: dict[tuple[int, str], float] = {}
    with open(run / "logs" / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            step = int(row.pop("step"))
            for key, value in row.items():
                if value != "" and key not in ("epoch", "wall_time"):  # row metadata
                    assert (step, key) not in cells, f"{key} logged twice at step {step}"
                    cells[step, key] = float(value)
    return cells


def assert_same_run(run: Path, reference: Path) -> None:
    expected, got = (
        trainable(reference / "checkpoints" / "last.ckpt"),
        trainable(run / "checkpoints" / "last.ckpt"),
    )
    assert set(expected) == set(got)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=1e-6, rtol=1e-5)
    want, have = logged(reference), logged(run)
    assert sorted(have) == sorted(want)
    for cell, value in want.items():
        assert have[cell] == pytest.approx(value, rel=1e-4, abs=1e-6), cell


def test_sigterm_mid_stage_two_checkpoints_exits_requeue_and_resumes(
    args, uninterrupted, tmp_path
) -> None:
    run = tmp_path / "run"
    victim = cli(args, run)
    metrics = run / "logs" / "metrics.csv"
    deadline = time.time() + 240
    while last_logged_step(metrics) < 4:  # step 4 logged: the run is in stage 2
        assert victim.poll() is None and time.time() < deadline, "run ended before the signal"
        time.sleep(0.02)
    victim.send_signal(signal.SIGTERM)
    out, _ = victim.communicate(timeout=120)
    assert victim.returncode == REQUEUE_EXIT_CODE, out[-3000:]
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert saved in STAGE2, saved
    assert "preempted at step" in out
    finish(cli(args, run))  # the same command again: resume=auto continues the run
    assert trainable_step(run) == 12
    assert_same_run(run, uninterrupted)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(
    args, uninterrupted, tmp_path, caplog
) -> None:
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)  # keeps modification times: step=12 and last newest
    for name in ("last.ckpt", "step=12.ckpt"):
        path = run / "checkpoints" / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    with caplog.at_level(logging.WARNING, logger="speechllm.training.resume"):
        train(compose(args, output_dir=run))
    skipped = [r.getMessage() for r in caplog.records if "does not load" in r.getMessage()]
    assert len(skipped) == 2 and all("step=12" in m or "last" in m for m in skipped)
    assert trainable_step(run) == 12
    assert_same_run(run, uninterrupted)


class RowOnDiskIO(AtomicCheckpointIO):
    """Records, per checkpoint, whether ``metrics.csv`` held its last step's row when it was
    written: a SIGKILL right after the save must not lose that row."""

    rows_on_disk: ClassVar[dict[int, bool]] = {}

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        step = checkpoint["global_step"]
        with open(Path(path).parents[1] / "logs" / "metrics.csv", newline="") as f:
            logged = {int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")}
        self.rows_on_disk[step] = step - 1 in logged  # row "step" counts steps done before it
        super().save_checkpoint(checkpoint, path, storage_options)


def test_each_checkpoint_is_written_after_its_steps_row(args, uninterrupted, tmp_path) -> None:
    RowOnDiskIO.rows_on_disk.clear()
    io = f"trainer.plugins=[{{_target_:{RowOnDiskIO.__module__}.RowOnDiskIO}}]"
    train(compose([*args, io], output_dir=tmp_path))
    assert RowOnDiskIO.rows_on_disk == {3: True, 6: True, 9: True, 12: True}
    assert logged(tmp_path) == logged(uninterrupted)  # and Lightning's own call added no row


def trainable_step(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def last_logged_step(metrics: Path) -> int:
    try:
        with open(metrics, newline="") as f:
            return max(int(row["step"]) for row in csv.DictReader(f))
    except (FileNotFoundError, ValueError, TypeError):  # not yet written, or a row half-written
        return -1


class SignalAt(L.Callback):
    """Sends the process SIGTERM as optimizer step ``step`` starts (its forward not yet run)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and batch_idx == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize(("abandon_after_s", "saved_step"), [(None, 5), (0, 4)])
def test_finish_or_abandon_the_step_then_resume_exactly(
    batches, tmp_path, abandon_after_s, saved_step
) -> None:
    """Step 4 (stage 2) is finished or abandoned; either way the resumed run ends as an
    uninterrupted one."""

    def trainer(steps: int, *extra: L.Callback) -> L.Trainer:
        callbacks = [CurriculumCallback(STAGES), Preemption(abandon_after_s=abandon_after_s)]
        return make_trainer(steps, [*callbacks, *extra], default_root_dir=tmp_path)

    reference = make_module()
    fit(reference, FixedBatches(batches), trainer(8))
    victim = make_module()
    with pytest.raises(SystemExit) as exited:
        fit(victim, FixedBatches(batches), trainer(8, SignalAt(4)))
    assert exited.value.code == REQUEUE_EXIT_CODE
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == saved_step
    resumed = make_module()
    fit(resumed, FixedBatches(batches), trainer(8), ResumePoint(str(ckpt), saved_step))
    want = reference.model.trainable_state_dict()
    for key, value in resumed.model.trainable_state_dict().items():
        torch.testing.assert_close(value, want[key], atol=1e-6, rtol=1e-5)


class SignalInValidation(L.Callback):
    """Sends SIGTERM from the first validation batch after optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        if trainer.global_step == self.step and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
        if trainer.global_step == self.step:
            self.finished = batch_idx + 1


class LoggingSteps(L.Callback):
    """The step each optimizer step's logs carry (Lightning's ``_batches_that_stepped``)."""

    def __init__(self) -> None:
        self.steps: dict[int, int] = {}

    def on_train_batch_end(self, trainer, *args) -> None:
        self.steps[trainer.global_step] = trainer.fit_loop.epoch_loop._batches_that_stepped


def test_a_signal_during_validation_lets_it_finish_then_resumes_exactly(batches, tmp_path):
    def trainer(*extra: L.Callback) -> L.Trainer:
        callbacks = [CurriculumCallback(STAGES), Preemption(), *extra]
        return make_trainer(
            8, callbacks, default_root_dir=tmp_path, limit_val_batches=2, val_check_interval=2
        )

    reference, reference_steps = make_module(), LoggingSteps()
    fit(reference, FixedBatches(batches), trainer(reference_steps))
    victim, signaller, victim_steps = make_module(), SignalInValidation(4), LoggingSteps()
    with pytest.raises(SystemExit):
        fit(victim, FixedBatches(batches), trainer(signaller, victim_steps))
    assert signaller.finished == 2  # both validation batches ran: their metrics are logged
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 4
    resumed, resumed_steps = make_module(), LoggingSteps()
    fit(resumed, FixedBatches(batches), trainer(resumed_steps), ResumePoint(str(ckpt), 4))
    # Lightning restores a stop after validation as a save before it: each step logged once
    assert victim_steps.steps | resumed_steps.steps == reference_steps.steps
    want = reference.model.trainable_state_dict()
    for key, value in resumed.model.trainable_state_dict().items():
        torch.testing.assert_close(value, want[key], atol=1e-6, rtol=1e-5)
