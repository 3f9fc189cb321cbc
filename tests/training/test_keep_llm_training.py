"""The keep-the-LLM options through speechllm-train: text items in the mixture, the kd
objective and audio-gated adapters, at tiny size; the export keeps the gate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from speechllm.config import compose
from speechllm.models import SpeechLLM
from speechllm.models.pretrained import export_checkpoint
from speechllm.testing import write_tiny_manifest
from speechllm.training.train import train


def test_text_mix_kd_and_gating_train_log_and_export(tmp_path: Path) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 32)
    text = tmp_path / "text.jsonl"
    pairs = [("What is two plus three?", "five"), ("Name a colour.", "blue")] * 4
    text.write_text("".join(json.dumps({"instruction": q, "target": a}) + "\n" for q, a in pairs))
    overrides = [
        "experiment=tiny_smoke",
        f"data.train_manifests=[{manifest}]",
        f"data.val_manifests=[{manifest}]",
        f"data.text_manifests=[{text}]",
        "+mixture.text=1.0",
        "+curriculum.stages.lora_warmup.tasks.text=1.0",
        "+curriculum.stages.lora_warmup.objective={lm: 1.0, kd: 1.0}",
        "+curriculum.stages.multitask.objective={lm: 1.0, kd: 1.0}",
        "module.model.audio_gated=true",
    ]
    metrics = train(compose(overrides, output_dir=tmp_path / "run"))
    assert {"train/kd_loss", "train/lm_loss"} <= set(metrics)
    with (tmp_path / "run" / "logs" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert any(row.get("train/text/loss") for row in rows)  # text batches trained too
    model = SpeechLLM.from_pretrained(
        export_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "export")
    )
    assert model.audio_gated
    question = "What is two plus three?"
    answer = model.generate_ids(None, [question], max_new_tokens=5)
    with model.llm.adapters_off():
        assert model.generate_ids(None, [question], max_new_tokens=5) == answer
    assert any(torch.count_nonzero(p) for p in model.llm.adapter_parameters("default"))
