"""Text-only downstream classification (two-step PEFT's step two without audio)."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
from torch.optim import AdamW
from torch.utils.data import DataLoader

from speechllm.models import ClassificationHead
from speechllm.models.tiny import tiny_llm, tiny_lora
from speechllm.training import warmup_decay
from speechllm.training.text_classifier import TextClassifierModule

LABELS = {"colour": ["red", "green", "blue"], "size": ["small", "large"]}


def rows(n: int) -> list[dict[str, str]]:
    """Texts whose labels are written in them: learnable from the text alone."""
    out = []
    for i in range(n):
        colours = LABELS["colour"][: 1 + i % 3]
        size = LABELS["size"][i % 2]
        text = f"a {size} box painted {' and '.join(colours)}"
        out.append({"text": text, "task": "colour", "target": ", ".join(colours)})
        out.append({"text": text, "task": "size", "target": size})
    return out


def collate(items):
    return {k: [i[k[:-1]] for i in items] for k in ("texts", "tasks", "targets")}


def build(trainable: list[str], active: list[str]) -> TextClassifierModule:
    torch.manual_seed(0)
    llm = tiny_llm("llama", adapters={"domain": tiny_lora(), "task": tiny_lora()})
    heads = {t: ClassificationHead(llm.hidden_size, labels) for t, labels in LABELS.items()}
    return TextClassifierModule(
        llm,
        heads,
        trainable=trainable,
        active=active,
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
    module = build(trainable=["task"], active=["domain", "task"])
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
    module = build(trainable=["domain", "task"], active=["domain", "task"])
    names = {n for n, p in module.named_parameters() if p.requires_grad}
    assert names and all(".domain." in n or ".task." in n or n.startswith("heads.") for n in names)
    assert any(n.startswith("heads.") for n in names)


def test_a_causal_llm_is_required() -> None:
    llm = tiny_llm("t5")
    heads = {"colour": ClassificationHead(llm.hidden_size, LABELS["colour"])}
    with pytest.raises(ValueError, match="decoder-only"):
        TextClassifierModule(llm, heads, trainable=[])
