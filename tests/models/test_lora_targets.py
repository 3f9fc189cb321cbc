"""LoRA target modules are checked when the LLM is built, and each ``llm=`` brings fitting ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from peft import LoraConfig

from speechllm.config import CONF_DIR, compose
from speechllm.models import LLM
from speechllm.models.llm import check_lora_targets
from speechllm.models.tiny import save_tiny_twin, tiny_llm

TWIN_OF = {  # smollm2 is a LlamaForCausalLM: the Llama twin has its module names
    "llama": "llama",
    "qwen": "qwen2",
    "flan_t5": "t5",
    "gpt2": "gpt2",
    "pretrained": "llama",
    "smollm2": "llama",
}


def test_a_target_the_llm_lacks_fails_at_build_time_naming_what_it_has() -> None:
    lora = LoraConfig(r=4, target_modules=["q_proj", "c_attn"])  # c_attn is GPT-2's
    with pytest.raises(ValueError, match=r"\['c_attn'\].*LlamaForCausalLM.*'q_proj'"):
        tiny_llm("llama", adapters={"default": lora})


def test_a_late_adapter_is_checked_before_it_is_attached() -> None:
    llm = tiny_llm("t5")
    with pytest.raises(ValueError, match=r"\['q_proj'\].*T5ForConditionalGeneration"):
        llm.attach_adapter("task", LoraConfig(r=4, target_modules=["q_proj"]))
    assert llm.attached_adapters == []


def test_regex_targets_must_match_a_module() -> None:
    model = tiny_llm("llama").base_model
    check_lora_targets(model, LoraConfig(target_modules=r".*\.(q|v)_proj"))
    with pytest.raises(ValueError, match="match no module"):
        check_lora_targets(model, LoraConfig(target_modules=r".*\.c_attn"))


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "llm").glob("*.yaml")))
def test_every_llm_option_brings_lora_defaults_that_fit_it(option: str, tmp_path: Path) -> None:
    cfg = compose([f"llm={option}"])
    lora = instantiate(cfg.lora, _convert_="all")
    if option.startswith("tiny_"):
        llm = tiny_llm(option.removeprefix("tiny_"), adapters={"default": lora})
    else:  # the hub architecture's tiny twin, loaded as the real one would be
        folder = save_tiny_twin(TWIN_OF[option], tmp_path / option)
        llm = LLM.from_pretrained(str(folder), adapters={"default": lora})
    llm.attach_adapter("default")
    assert llm.adapter_parameters("default")
