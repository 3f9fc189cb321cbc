"""Every shipped experiment runs as shipped, at tiny size: train, export, evaluate, infer.

Only the bases change: each hub id is swapped for a tiny twin of the same architecture
(same config and model class), saved in the dtype the real checkpoint is stored in and loaded
through the same ``from_pretrained``. Each experiment keeps its ``llm.dtype``, its precision
(``bf16-mixed`` runs on CPU), its curriculum and its LoRA config; only lengths shrink.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from speechllm.cli.eval import run as evaluate
from speechllm.cli.infer import main as infer
from speechllm.config import compose
from speechllm.models import SpeechLLM
from speechllm.models.pretrained import export_checkpoint
from speechllm.models.tiny import STORED_DTYPES, save_tiny_twin, tiny_llm
from speechllm.synth.clinical import DEPARTMENTS, SYMPTOM_CLASSES
from speechllm.testing import write_tiny_manifest
from speechllm.training.train import train
from tests.test_config import EXPERIMENTS as SPEECH_EXPERIMENTS

EXPERIMENTS = SPEECH_EXPERIMENTS  # speechllm-train's (the text ones: tests/training)
HUB_TWINS = {  # the hub checkpoints the shipped configs name -> their tiny twin
    "openai/whisper-large-v3": "whisper",
    "microsoft/wavlm-large": "wavlm",
    "facebook/hubert-large-ll60k": "hubert",
    "facebook/wav2vec2-large-lv60": "wav2vec2",
    "Qwen/Qwen2.5-1.5B-Instruct": "qwen2",
    "meta-llama/Llama-3.2-1B-Instruct": "llama",
    "google/flan-t5-xl": "t5",
    "openai-community/gpt2": "gpt2",
}
# checkpoints speechllm-fetch puts in the cache (${paths.cache_dir}/...) -> their tiny twin
FETCHED_TWINS = {
    "whisper-tiny.en/hf": "whisper",
    "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "llama",
}
# the demo's bootstrap writes a WhisperEncoder and a LlamaForCausalLM, in fp32
BOOTSTRAP = {"encoder": ("whisper", torch.float32), "llm": ("llama", torch.float32)}
TASKS = ("asr", "st", "ic", "sf", "kws", "kwe", "er", "asc", "ac", "gr", "sc", "sns")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/dev/test manifests with every task the experiments draw (clinical labels too)."""
    out = tmp_path_factory.mktemp("data")
    manifest = write_tiny_manifest(out, 60, tasks=(*TASKS, "symptoms", "department"))
    lines = []
    for i, line in enumerate(map(json.loads, manifest.read_text().splitlines())):
        if line["task"] == "symptoms":
            line["target"] = ", ".join(SYMPTOM_CLASSES[i % 3 : i % 3 + 1 + i % 2])
            line.pop("labels")
        elif line["task"] == "department":
            line["labels"] = sorted(DEPARTMENTS)
            line["target"] = line["labels"][i % len(line["labels"])]
        lines.append(json.dumps(line))
    for split in ("train", "dev", "test"):
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory):
    """``twin(kind, dtype=None) -> folder``, each saved once."""
    root, made = tmp_path_factory.mktemp("twins"), {}

    def twin(kind: str, dtype: torch.dtype | None = None) -> Path:
        key = (kind, dtype or STORED_DTYPES[kind])
        if key not in made:
            made[key] = save_tiny_twin(kind, root / f"{kind}-{str(key[1])[6:]}", key[1])
        return made[key]

    return twin


def base_overrides(experiment: str, cfg, twins, tmp: Path) -> tuple[list[str], dict]:
    """Overrides that swap only the bases; and the dtype each base must arrive in."""
    overrides, dtypes = [], {}
    for part in ("encoder", "llm"):
        node = cfg[part]
        name = str(node.get("name_or_path", ""))
        fetched = name.removeprefix(f"{cfg.paths.cache_dir}/")
        if name in HUB_TWINS:
            overrides.append(f"{part}.name_or_path={twins(HUB_TWINS[name])}")
            dtypes[part] = STORED_DTYPES[HUB_TWINS[name]]
        elif fetched in FETCHED_TWINS:
            overrides.append(f"{part}.name_or_path={twins(FETCHED_TWINS[fetched])}")
            dtypes[part] = STORED_DTYPES[FETCHED_TWINS[fetched]]
        elif name.startswith(str(cfg.paths.get("bootstrap_dir", "?"))):
            kind, dtype = BOOTSTRAP[part]
            (tmp / "bases").mkdir(exist_ok=True)
            target = tmp / "bases" / part
            if not target.exists():
                target.symlink_to(twins(kind, dtype))
            dtypes[part] = dtype
        elif name:
            raise AssertionError(f"{experiment}: no tiny twin for {part} {name!r}")
        else:
            dtypes[part] = torch.float32  # built from a config (tiny_*)
        if node.get("dtype"):
            dtypes[part] = getattr(torch, node.dtype)
    if "bootstrap_dir" in cfg.paths:
        overrides.append(f"paths.bootstrap_dir={tmp / 'bases'}")
    return overrides, dtypes


def short_overrides(cfg, data_dir: Path, tmp: Path) -> list[str]:
    """Seconds-long lengths on this CPU; nothing else changes."""
    stages = list(cfg.curriculum.stages)
    out = [f"curriculum.stages.{name}.steps=1" for name in stages[:-1]]
    out += [
        f"trainer.max_steps={len(stages) + 2}",
        f"trainer.val_check_interval={len(stages) + 2}",
        "trainer.limit_val_batches=1",
        "trainer.accelerator=cpu",  # the GPU presets keep their precision (bf16-mixed)
        "trainer.devices=1",
        "data.num_workers=0",
        "data.max_batch_seconds=6",
        "callbacks.progress.refresh_rate=0",
        "callbacks.checkpoint.every_n_train_steps=1000",
    ]
    out += [
        f"data.train_manifests=[{data_dir / 'train.jsonl'}]",
        f"data.val_manifests=[{data_dir / 'dev.jsonl'}]",
        "data.test_manifests=[]",
    ]
    if "two_step" in cfg:  # step two loads step one's domain adapter
        out.append(f"two_step.domain_adapter_path={domain_adapter(cfg, tmp)}")
    return out


def domain_adapter(cfg, tmp: Path) -> Path:
    """A step-one ``domain`` adapter (untrained) for the experiment's own LoRA config."""
    llm = tiny_llm("llama", adapters={"domain": instantiate(cfg.lora, _convert_="all")})
    llm.attach_adapter("domain")
    return llm.save_adapter("domain", tmp / "domain")


def test_every_experiment_is_covered() -> None:
    assert {"multitask_whisper_qwen", "librispeech_wavlm_flant5", "tiny_smoke"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_trains_exports_evaluates_and_answers_as_shipped(
    experiment: str, data_dir: Path, twins, tmp_path: Path
) -> None:
    shipped = compose([f"experiment={experiment}"], output_dir=tmp_path)
    bases, dtypes = base_overrides(experiment, shipped, twins, tmp_path)
    overrides = [f"experiment={experiment}", *bases, *short_overrides(shipped, data_dir, tmp_path)]
    cfg = compose(overrides, output_dir=tmp_path / "run")
    assert cfg.trainer.precision == shipped.trainer.precision
    assert OmegaConf.to_container(cfg.lora) == OmegaConf.to_container(shipped.lora)
    assert cfg.llm.get("dtype") == shipped.llm.get("dtype")

    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and "val/loss" in metrics
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"

    model = SpeechLLM.from_pretrained(export_checkpoint(ckpt, tmp_path / "export"))
    assert model.encoder.dtype == dtypes["encoder"]
    assert model.llm.base_model.get_input_embeddings().weight.dtype == dtypes["llm"]
    assert all(p.dtype == torch.float32 for p in model.trainable_state_dict().values())
    assert model.template.chat == shipped.chat_template  # instruct configs use the chat format

    report = evaluate(
        compose(
            config_name="eval",
            overrides=[
                f"checkpoint={tmp_path / 'export'}",
                f"manifest={data_dir / 'test.jsonl'}",
                f"out={tmp_path / 'eval'}",
                "limit=6",
                "num_workers=0",
                "device=cpu",
                "decoding.max_new_tokens=4",
            ],
        )
    )
    assert sum(scores["n"] for scores in report["tasks"].values()) == 6

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        infer(
            [
                str(data_dir / "wavs" / "tiny-0-00000.flac"),
                "Transcribe the audio.",
                "--model",
                str(tmp_path / "export"),
                "--max-new-tokens",
                "4",
            ]
        )
    assert printed.getvalue().endswith("\n")
