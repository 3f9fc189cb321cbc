"""One tiny training run shared by the evaluation, export and CLI tests (the ``tiny_run``
fixture of ``tests/conftest.py``): training is the slow part."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from speechllm.config import compose
from speechllm.data.instructions import write_heldout_copy
from speechllm.models.pretrained import export_checkpoint
from speechllm.testing import write_tiny_manifest
from speechllm.training.train import train

EVERY_N_VALIDATIONS = 2


@dataclass(frozen=True)
class TinyRun:
    """A finished ``experiment=tiny_smoke`` run with ``callbacks=generation_metrics``."""

    metrics: dict[str, float]
    """``trainer.callback_metrics`` at the end of the run."""
    checkpoint: Path
    export: Path
    curves: Path
    """The run's CSVLogger ``metrics.csv``."""
    test: Path
    """A 12-line manifest of utterances not trained on."""
    heldout: Path
    """``test`` again, ids suffixed ``-heldout`` and marked ``meta.instruction_split``."""


def train_tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """Train the run, export it, and write its test manifests."""
    data = tmp_path_factory.mktemp("data")
    train_manifest = write_tiny_manifest(data / "train", 48)
    test = write_tiny_manifest(data / "test", 12, seed=1)
    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose(
        [
            "experiment=tiny_smoke",
            "callbacks=generation_metrics",
            f"callbacks.generation_metrics.every_n_validations={EVERY_N_VALIDATIONS}",
            "callbacks.generation_metrics.decoding.max_new_tokens=8",
            "callbacks.progress.refresh_rate=0",
            f"data.train_manifests=[{train_manifest}]",
            f"data.val_manifests=[{test}]",
        ],
        output_dir=run_dir,
    )
    metrics = train(cfg)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    return TinyRun(
        metrics=metrics,
        checkpoint=checkpoint,
        export=export_checkpoint(checkpoint, run_dir / "export"),
        curves=run_dir / "logs" / "metrics.csv",
        test=test,
        heldout=write_heldout_copy(test, data / "heldout.jsonl"),
    )
