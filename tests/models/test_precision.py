"""Half-precision bases, as transformers 5 loads real checkpoints (in their stored dtype).

Tiny twins are saved in the real checkpoint's dtype (Whisper fp16, Llama/Qwen bf16) and
loaded through ``from_pretrained``; the model trains with and without autocast, generates,
and survives export with merged adapters, with fp32 trainable weights throughout.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from peft import LoraConfig

from speechllm.data.features import Featurizer, collate_features
from speechllm.models import LLM, AudioEncoder, ConvDownsampler, SpeechLLM
from speechllm.models.tiny import STORED_DTYPES, save_tiny_twin, tiny_encoder, tiny_llm

PAIRS = [("whisper", "qwen2"), ("whisper", "llama"), ("wavlm", "llama"), ("hubert", "t5")]
TARGETS = {"t5": ["q", "v"], "gpt2": ["c_attn"]}


def build(tmp: Path, encoder_kind: str, llm_kind: str) -> SpeechLLM:
    encoder = AudioEncoder.from_pretrained(str(save_tiny_twin(encoder_kind, tmp / encoder_kind)))
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS.get(llm_kind, ["q_proj", "v_proj"]))
    llm_path = save_tiny_twin(llm_kind, tmp / llm_kind)
    llm = LLM.from_pretrained(str(llm_path), adapters={"default": lora})
    assert encoder.dtype == STORED_DTYPES[encoder_kind]
    assert llm.base_model.dtype == STORED_DTYPES[llm_kind]
    torch.manual_seed(0)
    return SpeechLLM(encoder, partial(ConvDownsampler, strides=[2, 2]), llm)


def batch(model: SpeechLLM) -> tuple[torch.Tensor, torch.Tensor]:
    featurize = Featurizer(model.encoder.feature_extractor)
    gen = torch.Generator().manual_seed(0)
    return collate_features([featurize(torch.randn(n, generator=gen)) for n in (16000, 9000)])


@pytest.mark.parametrize("autocast", [False, True], ids=["32-true", "bf16-mixed"])
@pytest.mark.parametrize(("encoder_kind", "llm_kind"), PAIRS)
def test_half_precision_bases_train_with_and_without_autocast(
    encoder_kind: str, llm_kind: str, autocast: bool, tmp_path: Path
) -> None:
    model = build(tmp_path, encoder_kind, llm_kind)
    model.set_trainable(["downsampler", "layer_weights", "lora"])
    audio, lengths = batch(model)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(audio, lengths, ["Transcribe.", "Intent?"], ["hello", "play"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)  # fp32 master weights
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable)
    assert model.encoder.dtype == STORED_DTYPES[encoder_kind]  # nothing cast the bases
    assert model.llm.base_model.get_input_embeddings().weight.dtype == STORED_DTYPES[llm_kind]


def test_half_precision_model_generates_and_round_trips_merged(tmp_path: Path) -> None:
    model = build(tmp_path, "whisper", "qwen2").eval()
    model.set_trainable(["downsampler", "layer_weights", "lora"])
    with torch.no_grad():  # a trained adapter, so merging changes the weights
        for p in model.llm.adapter_parameters("default"):
            p.normal_(std=0.05)
    audio, lengths = batch(model)
    instructions = ["Transcribe the audio."] * 2
    answers = model.generate(audio, lengths, instructions, max_new_tokens=4)
    assert len(answers) == 2
    with torch.no_grad():
        before = model(audio, lengths, instructions, ["a b", "c"]).item_loss_sum
    node = {
        "_target_": "speechllm.models.SpeechLLM",
        "encoder": {
            "_target_": "speechllm.models.AudioEncoder.from_pretrained",
            "name_or_path": str(tmp_path / "whisper"),
        },
        "downsampler": {"_target_": "speechllm.models.ConvDownsampler", "_partial_": True},
        "llm": {
            "_target_": "speechllm.models.LLM.from_pretrained",
            "name_or_path": str(tmp_path / "qwen2"),
            "adapters": {},
        },
    }
    node["downsampler"]["strides"] = [2, 2]
    out = model.save_pretrained(tmp_path / "export", node, merge_lora=True)
    loaded = SpeechLLM.from_pretrained(out)
    assert loaded.llm.base_model.dtype == torch.bfloat16 and loaded.encoder.dtype == torch.float16
    with torch.no_grad():
        after = loaded(audio, lengths, instructions, ["a b", "c"]).item_loss_sum
    torch.testing.assert_close(after, before, atol=0.05, rtol=0.02)  # bf16 merge rounding
    assert loaded.generate(audio, lengths, instructions, max_new_tokens=4) == answers


def test_tiny_builders_cast_the_weights_not_just_the_config() -> None:
    llm = tiny_llm("llama", dtype="bfloat16")
    assert {p.dtype for p in llm.parameters()} == {torch.bfloat16}
    encoder = tiny_encoder("whisper", dtype=torch.float16)
    assert {p.dtype for p in encoder.model.parameters()} == {torch.float16}
    assert encoder.layer_weights.logits.dtype == torch.float32
