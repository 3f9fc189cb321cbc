"""Every shipped experiment runs end to end at tiny size: real configs, tiny models."""

from pathlib import Path

import pytest

from speechllm.config import compose
from speechllm.models.tiny import write_tiny_manifest
from speechllm.train import train

TINY = {
    "librispeech_wavlm_flant5": ["encoder=tiny_wavlm", "llm=tiny_t5", "lora=tiny"],
    "multitask_whisper_qwen": [
        "encoder=tiny_whisper",
        "llm=tiny_llama",
        "lora=tiny",
        "~llm.dtype",
        "llm.gradient_checkpointing=false",
    ],
}
SHORT = [
    "trainer=cpu",
    "trainer.max_steps=4",
    "trainer.val_check_interval=4",
    "trainer.limit_val_batches=1",
    "curriculum.stages.0.steps=1",
    "curriculum.stages.1.steps=1",
    "data.num_workers=0",
    "data.max_batch_seconds=6",
    "callbacks.progress.refresh_rate=0",
]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    tasks = ("asr", "st", "ic", "sf", "kws", "kwe", "er", "asc", "ac", "gr", "sc", "sns")
    return write_tiny_manifest(tmp_path_factory.mktemp("data"), 48, tasks=tasks)


@pytest.mark.parametrize("experiment", sorted(TINY))
def test_recipe_runs_at_tiny_size(experiment: str, manifest: Path, tmp_path: Path) -> None:
    overrides = [
        f"experiment={experiment}",
        *TINY[experiment],
        *SHORT,
        f"data.train_manifests=[{manifest}]",
        f"data.val_manifests=[{manifest}]",
        "data.test_manifests=[]",
    ]
    cfg = compose(overrides, output_dir=tmp_path)
    metrics = train(cfg)
    assert metrics["train/loss"] > 0 and "val/loss" in metrics
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
