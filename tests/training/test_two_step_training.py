"""Step one (text-only domain adapter) and step two (curriculum over the stacked adapters)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from speechllm.config import compose, validate
from speechllm.data.text import TextDataModule
from speechllm.models import ConvDownsampler, SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm, tiny_lora
from speechllm.testing import tiny_batches
from speechllm.training import CurriculumCallback, SaveAdapters, SpeechLLMModule, TextLMModule
from tests.models.stacked import make_model
from tests.training.tiny_world import FixedBatches, _constant, make_trainer


def snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture
def step_two_batches() -> list[dict]:
    return tiny_batches(num_batches=3, batch_size=4, tasks=("asr", "ic"), seed=0)


@pytest.mark.parametrize("domain", ["frozen", "trainable"])
def test_step_two_trains_the_task_adapter_over_a_frozen_or_trainable_domain(
    step_two_batches, domain: str
) -> None:
    model = make_model()
    module = SpeechLLMModule(
        model, optimizer=partial(torch.optim.AdamW, lr=1e-2), scheduler=partial(_constant)
    )
    trainable = ["downsampler", "lora.task"] + (["lora.domain"] if domain == "trainable" else [])
    stage = {"name": "downstream", "trainable": trainable, "tasks": {"asr": 1.0, "ic": 1.0}}
    curriculum = CurriculumCallback([{**stage, "active_adapters": ["domain", "task"]}])
    before = {n: snapshot(model.llm.adapter_parameters(n)) for n in ("domain", "task")}
    make_trainer(3, [curriculum]).fit(module, datamodule=FixedBatches(step_two_batches))
    assert model.llm.active_adapters == ["domain", "task"]
    assert not same(before["task"], snapshot(model.llm.adapter_parameters("task")))
    unchanged = same(before["domain"], snapshot(model.llm.adapter_parameters("domain")))
    assert unchanged == (domain == "frozen")  # frozen: bit-identical, weight decay included


def test_text_step_trains_only_the_domain_adapter_and_saves_it(tmp_path: Path) -> None:
    corpus = tmp_path / "text.txt"
    corpus.write_text("patient with chest pain plan ecg\nstart aspirin daily\n" * 8)
    torch.manual_seed(0)
    llm = tiny_llm("llama", adapters={"domain": tiny_lora(), "task": tiny_lora()})
    llm.attach_adapter("task")  # present but not named: must not train
    base = snapshot(p for n, p in llm.named_parameters() if "lora_" not in n)
    task = snapshot(llm.adapter_parameters("task"))
    module = TextLMModule(llm, ["domain"], partial(torch.optim.AdamW, lr=1e-2), partial(_constant))
    first = float(module(["patient with chest pain plan ecg"]))
    saver = SaveAdapters(["domain"], str(tmp_path / "adapters"))
    make_trainer(12, [saver], limit_val_batches=0).fit(
        module, datamodule=TextDataModule(str(corpus), batch_size=4)
    )
    assert float(module(["patient with chest pain plan ecg"])) < first
    assert same(base, snapshot(p for n, p in llm.named_parameters() if "lora_" not in n))
    assert same(task, snapshot(llm.adapter_parameters("task")))
    lora_b = [p for n, p in llm.model.named_parameters() if "lora_B.domain" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B left zero: no adapter
    loaded = tiny_llm("llama", adapter_paths={"domain": str(tmp_path / "adapters" / "domain")})
    for a, b in zip(
        loaded.adapter_parameters("domain"), llm.adapter_parameters("domain"), strict=True
    ):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("domain", ["none", "frozen", "trainable"])
def test_two_step_peft_curriculum_composes_and_validates(domain: str, tmp_path: Path) -> None:
    cfg = compose(
        ["experiment=clinical_two_step", f"two_step.domain={domain}"], output_dir=tmp_path
    )
    validate(cfg)
    stage = cfg.curriculum.stages.downstream
    assert ("lora.domain" in stage.trainable) == (domain == "trainable")
    assert "lora.task" in stage.trainable and "heads" in stage.trainable
    assert list(stage.active_adapters) == (["task"] if domain == "none" else ["domain", "task"])
    assert set(cfg.llm.adapter_paths) == (set() if domain == "none" else {"domain"})


def test_text_config_composes_and_validates(tmp_path: Path) -> None:
    cfg = compose(output_dir=tmp_path, config_name="train_text")
    validate(cfg)
    assert list(cfg.module.adapters) == ["domain"] and "domain" in cfg.llm.adapters


def perturbed(model: SpeechLLM, seed: int) -> SpeechLLM:
    """A step-one-like model: its downsampler and layer weights moved away from their start."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in [*model.downsampler.parameters(), *model.encoder.layer_weights.parameters()]:
            p.add_(torch.randn(p.shape, generator=gen))
    return model


@pytest.mark.parametrize("source", ["ckpt", "export"])
def test_step_two_starts_from_step_ones_alignment(source: str, tmp_path: Path) -> None:
    step_one = perturbed(make_model(seed=1), seed=5)
    state = step_one.trainable_state_dict()
    if source == "ckpt":  # a training checkpoint keys the weights under the module's "model."
        path = tmp_path / "last.ckpt"
        torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}}, path)
    else:  # an export keeps downsampler, layer weights and heads in trainable.safetensors
        path = tmp_path / "export"
        path.mkdir()
        save_file({k: v.contiguous() for k, v in state.items() if "lora_" not in k},
                  path / "trainable.safetensors")  # fmt: skip
    fresh = make_model(seed=2)
    adapters = snapshot(fresh.llm.adapter_parameters("task"))
    SpeechLLMModule(fresh, init_from=str(path))
    for ours, theirs in (
        (fresh.downsampler, step_one.downsampler),
        (fresh.encoder.layer_weights, step_one.encoder.layer_weights),
    ):
        assert same(snapshot(ours.parameters()), snapshot(theirs.parameters()))
    assert same(adapters, snapshot(fresh.llm.adapter_parameters("task")))  # adapters untouched


def test_alignment_from_another_architecture_is_refused(tmp_path: Path) -> None:
    wide = SpeechLLM(
        tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm("llama", hidden_size=48)
    )
    torch.save({"state_dict": {f"model.{k}": v for k, v in wide.trainable_state_dict().items()}},
               tmp_path / "wide.ckpt")  # fmt: skip
    with pytest.raises(ValueError, match=r"downsampler\..*shape"):
        SpeechLLMModule(make_model(), init_from=str(tmp_path / "wide.ckpt"))
    with pytest.raises(FileNotFoundError, match="neither a training checkpoint"):
        SpeechLLMModule(make_model(), init_from=str(tmp_path))


def test_the_two_step_experiments_say_where_alignment_comes_from(tmp_path: Path) -> None:
    for experiment in ("two_step_peft", "clinical_two_step"):
        cfg = compose([f"experiment={experiment}"], output_dir=tmp_path)
        assert cfg.module.init_from is None and list(cfg.module.init_groups) == [
            "downsampler",
            "layer_weights",
        ]
        given = compose(
            [f"experiment={experiment}", "two_step.alignment=x.ckpt"], output_dir=tmp_path
        )
        assert given.module.init_from == "x.ckpt"
