"""GenerationMetrics: task metrics of generated answers logged during validation."""

from __future__ import annotations

import csv
import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.plugins.precision import Precision

from speechllm.evaluation import callback as callback_module
from speechllm.evaluation.callback import GenerationMetrics
from speechllm.evaluation.decoding import DecodingConfig
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.testing import tiny_batches, write_tiny_manifest
from tests.tiny_run import EVERY_N_VALIDATIONS, TinyRun


def test_fit_logs_task_metrics_every_nth_validation(tiny_run: TinyRun) -> None:
    names = {"val/asr/wer", "val/asr/cer", "val/ic/accuracy", "val/ic/uar"}
    assert names <= set(tiny_run.metrics)
    assert all(math.isfinite(tiny_run.metrics[name]) for name in names)
    assert 0 <= tiny_run.metrics["val/ic/accuracy"] <= 100
    with tiny_run.curves.open() as f:
        rows = list(csv.DictReader(f))
    validations = [row["step"] for row in rows if row["val/loss"]]
    scored = [row["step"] for row in rows if row["val/asr/wer"]]
    assert len(validations) == 3  # steps 3, 6, 9 of tiny_smoke
    assert scored == validations[::EVERY_N_VALIDATIONS]


class FakeModule:
    """What the callback touches of a SpeechLLMModule: ``model`` and ``log``."""

    def __init__(self, model: SpeechLLM) -> None:
        self.model = model
        self.logged: dict[str, float] = {}

    def log(self, name: str, value: float, sync_dist: bool) -> None:
        self.logged[name] = value


def validate(callback: GenerationMetrics, module: FakeModule, batches: list[dict]) -> None:
    trainer = SimpleNamespace(
        sanity_checking=False, datamodule=None, world_size=1, precision_plugin=Precision()
    )
    callback.on_validation_epoch_start(trainer, module)
    for i, batch in enumerate(batches):
        callback.on_validation_batch_end(trainer, module, None, batch, i)
    callback.on_validation_epoch_end(trainer, module)


def test_decodes_at_most_max_batches_and_every_nth_validation(monkeypatch) -> None:
    torch.manual_seed(0)
    model = SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm()).eval()
    decoded = []
    real = callback_module.decode_batch

    def counting(model, batch, *args):
        decoded.append(batch["ids"])
        return real(model, batch, *args)

    monkeypatch.setattr(callback_module, "decode_batch", counting)
    batches = tiny_batches(3, 2, tasks=("asr", "kws"), seed=1)
    for batch in batches:  # kws answers yes/no (its registry labels), not tiny's even/odd
        batch["targets"] = [
            "yes" if task == "kws" else target
            for task, target in zip(batch["tasks"], batch["targets"], strict=True)
        ]
    callback = GenerationMetrics(
        2, every_n_validations=2, decoding=DecodingConfig(max_new_tokens=3)
    )
    module = FakeModule(model)
    for _ in range(3):
        validate(callback, module, batches)
    assert decoded == [b["ids"] for b in batches[:2]] * 2  # validations 0 and 2, 2 batches each
    tasks = {t for b in batches[:2] for t in b["tasks"]}
    assert ("val/asr/wer" in module.logged) == ("asr" in tasks)
    assert ("val/kws/accuracy" in module.logged) == ("kws" in tasks)
    assert not any(name.endswith("/n") for name in module.logged)
    assert callback.state_dict() == {"validations": 3}


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batches"):
        GenerationMetrics(max_batches=0)


@pytest.mark.slow
def test_two_process_ddp_gathers_and_logs_without_hanging(tmp_path) -> None:
    from tests.training.test_train_cli import cli, finish

    manifest = write_tiny_manifest(tmp_path / "data", 12)
    args = [
        "experiment=tiny_smoke",
        "trainer=ddp_cpu",
        "callbacks=generation_metrics",
        "callbacks.generation_metrics.max_batches=1",
        f"data.train_manifests=[{manifest}]",
        f"data.val_manifests=[{manifest}]",
        "trainer.max_steps=3",
    ]
    finish(cli(args, tmp_path / "run"), timeout=300)
    with (tmp_path / "run" / "logs" / "metrics.csv").open() as f:
        scored = [row for row in csv.DictReader(f) if row["val/asr/wer"]]
    assert len(scored) == 1
