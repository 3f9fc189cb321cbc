"""Instruction and target strings from hypothesis: any text trains to a finite loss.

Instructions are free text from manifests and users: braces, template slots (``{audio}``),
control characters, right-to-left marks, astral symbols and empty strings must not move the
audio or break tokenisation.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.testing import tiny_batches

BATCH = tiny_batches(1, 2)[0]
texts = st.text(max_size=30) | st.sampled_from(["{audio}", "{instruction}", "{summary}", "}{"])


@pytest.fixture(scope="module")
def model() -> SpeechLLM:
    torch.manual_seed(0)
    return SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm("llama"))


@settings(max_examples=max(1, settings.default.max_examples // 2))
@given(instruction=texts, target=texts.filter(str.strip))
def test_any_instruction_and_target_give_a_finite_loss(model, instruction, target) -> None:
    batch = {**BATCH, "instructions": [instruction, "transcribe"], "targets": [target, "x"]}
    with torch.no_grad():
        out = model(**batch)
    assert torch.isfinite(out.loss)
