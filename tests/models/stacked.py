"""A tiny speech LLM with a `domain` and a `task` adapter, both non-trivial (B != 0): two-step
PEFT's stack, for the adapter and head tests."""

from __future__ import annotations

from functools import partial

import torch

from speechllm.models import ClassificationHead, ConvDownsampler, SpeechLLM
from speechllm.models.speech_llm import AudioEmbeddings
from speechllm.models.tiny import tiny_encoder, tiny_llm, tiny_lora

ADAPTERS = ("domain", "task")


def randomise(model: SpeechLLM, name: str, seed: int) -> None:
    """LoRA B starts at zero (a no-op); give it weights so the adapter changes the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.llm.adapter_parameters(name):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def make_model(seed: int = 0, heads: bool = False) -> SpeechLLM:
    torch.manual_seed(seed)
    model = SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler),
        tiny_llm("llama", adapters={n: tiny_lora() for n in ADAPTERS}),
        heads={"ic": partial(ClassificationHead, labels=["even", "odd"])} if heads else None,
    )
    model.set_trainable(["downsampler"], active_adapters=list(ADAPTERS))
    for i, name in enumerate(ADAPTERS):
        randomise(model, name, seed + i + 1)
    return model.eval()


def logits(model: SpeechLLM, batch: dict) -> torch.Tensor:
    """The LLM's logits over the spliced prompt and target of ``batch``."""
    with torch.no_grad():
        embeds, lengths = model.encode_audio(batch["audio"], batch["audio_lengths"])
        ids = [model.layout.target_ids(t) for t in batch["targets"]]
        inputs, mask, _ = model.lay_out(
            AudioEmbeddings(embeds, lengths), batch["instructions"], ids
        )
        return model.llm(inputs, mask)
