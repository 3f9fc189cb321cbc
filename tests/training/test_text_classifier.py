"""Text-only downstream classification (two-step PEFT's step two without audio): the module,
and the config path (``speechllm-train-text experiment=clinical_text_two_step``) with its arms."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.optim import AdamW
from torch.utils.data import DataLoader

from speechllm.config import compose, validate
from speechllm.data.text import batch as collate
from speechllm.data.text_classification import TextExample
from speechllm.models import TextClassifier
from speechllm.models.pretrained import load
from speechllm.models.tiny import tiny_llm, tiny_lora
from speechllm.synth.clinical_knowledge import write_clinical_knowledge
from speechllm.training import warmup_decay
from speechllm.training.text_classifier import TextClassifierModule
from speechllm.training.train import train_text

LABELS = {"colour": ["red", "green", "blue"], "size": ["small", "large"]}


def rows(n: int) -> list[TextExample]:
    """Texts whose labels are written in them: learnable from the text alone."""
    out = []
    for i in range(n):
        colours = tuple(LABELS["colour"][: 1 + i % 3])
        size = LABELS["size"][i % 2]
        text = f"a {size} box painted {' and '.join(colours)}"
        out += [
            TextExample(f"c{i}", text, "colour", colours),
            TextExample(f"s{i}", text, "size", (size,)),
        ]
    return out


def build(trainable: list[str], adapters: list[str]) -> TextClassifierModule:
    torch.manual_seed(0)
    llm = tiny_llm("llama", adapters={"domain": tiny_lora(), "task": tiny_lora()})
    return TextClassifierModule(
        TextClassifier(llm, LABELS, adapters=adapters),
        trainable=trainable,
        optimizer=partial(AdamW, lr=1e-2),
        scheduler=partial(warmup_decay, warmup_steps=3),
    )


def fit(module: TextClassifierModule, steps: int) -> None:
    L.seed_everything(0, verbose=False)
    loader = DataLoader(rows(24), batch_size=8, shuffle=True, collate_fn=collate)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)


def test_heads_and_task_adapter_learn_while_a_frozen_domain_adapter_stays_put() -> None:
    module = build(trainable=["task"], adapters=["domain", "task"])
    with torch.no_grad():  # a trained-looking domain adapter: its B is not zero
        for p in module.llm.adapter_parameters("domain"):
            p.normal_(std=0.1)
    domain = [p.clone() for p in module.llm.adapter_parameters("domain")]
    task = [p.clone() for p in module.llm.adapter_parameters("task")]
    batch = collate(rows(24))
    before = float(module(batch))
    fit(module, 30)
    after = float(module(batch))
    assert after < before * 0.8
    now = module.llm.adapter_parameters
    assert all(torch.equal(a, b) for a, b in zip(domain, now("domain"), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(task, now("task"), strict=True))
    probs = module.classify(["a large box painted red"], "size")
    assert probs.shape == (1, 2) and ((probs >= 0) & (probs <= 1)).all()


def test_only_named_adapters_and_heads_are_trainable() -> None:
    module = build(trainable=["domain", "task"], adapters=["domain", "task"])
    names = {n for n, p in module.named_parameters() if p.requires_grad}
    assert names and all(".domain." in n or ".task." in n or ".heads." in n for n in names)
    assert any(".heads." in n for n in names)
    with pytest.raises(ValueError, match="do not run"):
        build(trainable=["domain", "task"], adapters=["task"])


def test_a_causal_llm_is_required() -> None:
    with pytest.raises(ValueError, match="decoder-only"):
        TextClassifier(tiny_llm("t5"), LABELS)


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny synthetic domain and an untrained step-one ``domain`` adapter beside it."""
    out = tmp_path_factory.mktemp("knowledge")
    write_clinical_knowledge(out / "data", size="tiny")
    llm = tiny_llm(
        "llama", adapters={"domain": tiny_lora(r=4, target_modules=["q_proj", "v_proj"])}
    )
    llm.attach_adapter("domain")
    with torch.no_grad():
        for p in llm.adapter_parameters("domain"):
            p.normal_(std=0.1)
    return out / "data", llm.save_adapter("domain", out / "domain")


@pytest.mark.parametrize("arm", ["none", "frozen", "trainable"])
def test_the_experiment_trains_each_arm_from_config(arm: str, knowledge, tmp_path: Path) -> None:
    data, adapter = knowledge
    cfg = compose(
        [
            "experiment=clinical_text_two_step",
            f"two_step.domain={arm}",
            f"two_step.domain_adapter_path={adapter}",
            f"paths.data_dir={data}",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
            "trainer.limit_val_batches=1",
            "module.scheduler.warmup_steps=1",
            "+trainer.enable_progress_bar=false",
        ],
        output_dir=tmp_path,
        config_name="train_text",
    )
    validate(cfg)
    metrics = train_text(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and "val/loss" in metrics
    model = load(tmp_path / "checkpoints" / "last.ckpt")
    assert isinstance(model, TextClassifier)
    assert model.llm.active_adapters == (["task"] if arm == "none" else ["domain", "task"])
    assert len(model.heads["diagnoses"].labels) == 60 and "department" in model.heads
    if arm != "none":  # step one's adapter: kept when frozen, moved on when trainable
        step_one = tiny_llm("llama", adapter_paths={"domain": str(adapter)})
        ours, theirs = (x.adapter_parameters("domain") for x in (model.llm, step_one))
        same = all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
        assert same == (arm == "frozen")


def test_a_text_asked_for_several_tasks_is_read_once() -> None:
    model = build(trainable=["task"], adapters=["task"]).model.eval()
    read = []
    states = model.states
    model.states = lambda texts: read.append(list(texts)) or states(texts)  # type: ignore[method-assign]
    with torch.no_grad():
        out = model(["a red box", "a red box", "a blue box"], ["colour", "size", "colour"])
    assert read == [["a red box", "a blue box"]]
    alone = model.classify(["a blue box"], "colour")
    torch.testing.assert_close(out["colour"][1:].sigmoid(), alone, atol=1e-5, rtol=1e-4)
    assert out["size"].shape == (1, 2)
