"""Two-step PEFT's stack: both adapters run, train as configured, save, load and merge."""

from __future__ import annotations

import pytest
import torch

from speechllm.models import SpeechLLM
from speechllm.models.tiny import tiny_llm
from tests.models.stacked import ADAPTERS, logits, make_model


@pytest.fixture
def model() -> SpeechLLM:
    return make_model()


def test_zeroing_either_adapter_changes_the_outputs(model, batch) -> None:
    both = logits(model, batch)
    for name in ADAPTERS:
        saved = [p.detach().clone() for p in model.llm.adapter_parameters(name)]
        with torch.no_grad():
            for p in model.llm.adapter_parameters(name):
                p.zero_()
        assert not torch.allclose(logits(model, batch), both, atol=1e-4), name
        with torch.no_grad():
            for p, s in zip(model.llm.adapter_parameters(name), saved, strict=True):
                p.copy_(s)
    torch.testing.assert_close(logits(model, batch), both)


def test_gradients_reach_exactly_the_trainable_adapters(model, batch) -> None:
    for trainable in (["lora.task"], ["lora.task", "lora.domain"]):
        model.set_trainable(trainable, active_adapters=list(ADAPTERS))
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        for name in ADAPTERS:
            grads = [p.grad for p in model.llm.adapter_parameters(name)]
            if f"lora.{name}" in trainable:
                assert all(g is not None and g.abs().sum() > 0 for g in grads), name
            else:
                assert all(g is None for g in grads), name
        base = [p for n, p in model.llm.named_parameters() if "lora_" not in n]
        assert all(p.grad is None for p in base)


def test_save_and_reload_both_adapters_gives_the_same_outputs(model, batch, tmp_path) -> None:
    before = logits(model, batch)
    paths = {name: str(model.llm.save_adapter(name, tmp_path / name)) for name in ADAPTERS}
    llm = tiny_llm("llama", adapter_paths=paths)  # loaded at construction, as from a config
    assert llm.attached_adapters == list(ADAPTERS) and llm.active_adapters == list(ADAPTERS)
    assert not any(p.requires_grad for n in ADAPTERS for p in llm.adapter_parameters(n))
    base = {k: v for k, v in model.llm.base_model.state_dict().items() if "lora_" not in k}
    assert not llm.base_model.load_state_dict(base, strict=False).unexpected_keys
    model.llm = llm
    torch.testing.assert_close(logits(model, batch), before)


def test_merging_both_adapters_matches_the_unmerged_stack(model, batch) -> None:
    stacked = logits(model, batch)
    model.llm.merge_adapters()
    assert model.llm.attached_adapters == []
    torch.testing.assert_close(logits(model, batch), stacked, atol=1e-4, rtol=1e-4)
