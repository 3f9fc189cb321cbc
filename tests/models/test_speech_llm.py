from functools import partial

import pytest
import torch

from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import IGNORE, SpeechLLM
from speechllm.models.tiny import tiny_batches, tiny_encoder, tiny_llm, tiny_lora


def build(llm_kind: str = "llama", summary_tokens: int = 0, **adapters) -> SpeechLLM:
    return SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler, summary_tokens=summary_tokens),
        tiny_llm(llm_kind, adapters=adapters),
    ).eval()


def test_downsampler_sizes_must_match() -> None:
    with pytest.raises(ValueError, match="downsampler maps"):
        SpeechLLM(tiny_encoder("wavlm"), ConvDownsampler(32, 16), tiny_llm("llama"))
    with pytest.raises(ValueError, match="placeholder"):
        SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm(), "{instruction}")


@pytest.mark.parametrize("summary", [0, 2])
def test_labels_cover_exactly_target_and_eos(summary: int) -> None:
    model = build(summary_tokens=summary)
    batch = tiny_batches(1, 3)[0]
    embeds, lengths = model.encode_audio(batch["audio"], batch["audio_lengths"])
    targets = model._target_ids(batch["targets"])
    inputs, mask, labels = model._splice(embeds, lengths, batch["instructions"], targets)
    for b, ids in enumerate(targets):
        row = labels[b][labels[b] != IGNORE].tolist()
        assert row == ids and row[-1] == model.llm.eos_token_id
        assert labels[b, -len(ids) :].tolist() == ids  # targets end the row (left padding)
        prompt = len(model._prompt_ids(batch["instructions"][b])[0]) + int(lengths[b])
        prompt += len(model._prompt_ids(batch["instructions"][b])[1])
        assert int(mask[b].sum()) == prompt + len(ids)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_causal_loss_equals_hugging_face_loss(kind: str) -> None:
    model = build(kind)
    batch = tiny_batches(1, 3)[0]
    out = model(**batch)
    embeds, lengths = model.encode_audio(batch["audio"], batch["audio_lengths"])
    inputs, mask, labels = model._splice(
        embeds, lengths, batch["instructions"], model._target_ids(batch["targets"])
    )
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    reference = model.llm.base_model(
        inputs_embeds=inputs, attention_mask=mask, position_ids=position_ids, labels=labels
    ).loss
    torch.testing.assert_close(out.loss, reference, atol=1e-5, rtol=1e-5)
    assert out.item_tokens.tolist() == [len(t) + 1 for t in batch["targets"]]  # bytes + eos


def test_seq2seq_loss_equals_hugging_face_loss() -> None:
    model = build("t5")
    batch = tiny_batches(1, 3)[0]
    out = model(**batch)
    embeds, lengths = model.encode_audio(batch["audio"], batch["audio_lengths"])
    inputs, mask, _ = model._splice(embeds, lengths, batch["instructions"], None)
    ids = model._target_ids(batch["targets"])
    labels = torch.full((3, max(map(len, ids))), IGNORE)
    for b, row in enumerate(ids):
        labels[b, : len(row)] = torch.tensor(row)
    reference = model.llm.base_model(inputs_embeds=inputs, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(out.loss, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("summary", [0, 2])
@pytest.mark.parametrize("kind", ["llama", "gpt2", "t5"])
def test_batched_generate_equals_unbatched(kind: str, summary: int) -> None:
    torch.manual_seed(1)
    model = build(kind, summary_tokens=summary)
    batch = tiny_batches(1, 4, seed=3)[0]
    instructions = ["transcribe this", "what colour?", "x", "say the word you hear, please"]
    settings = {"max_new_tokens": 8, "suppress_tokens": [0, 1, 2, 3]}  # random weights: no specials
    batched = model.generate(batch["audio"], batch["audio_lengths"], instructions, **settings)
    for b in range(4):
        n = int(batch["audio_lengths"][b])
        alone = model.generate(
            batch["audio"][b : b + 1, :n],
            batch["audio_lengths"][b : b + 1],
            instructions[b : b + 1],
            **settings,
        )
        assert alone == [batched[b]]
    assert all(batched)


def test_set_trainable_attaches_and_selects_adapters() -> None:
    model = build(domain=tiny_lora(), task=tiny_lora())
    model.set_trainable(["downsampler", "layer_weights"])
    assert model.llm.attached_adapters == []
    model.set_trainable(["lora.task"], active_adapters=["domain", "task"])
    assert set(model.llm.attached_adapters) == {"domain", "task"}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".task." in n for n in trainable)
    assert not any(p.requires_grad for p in model.downsampler.parameters())
    model.set_trainable(["lora"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".domain." in n for n in trainable) and any(".task." in n for n in trainable)
    with pytest.raises(ValueError, match="unknown trainable group"):
        model.set_trainable(["encoder"])


@pytest.mark.parametrize("summary", [0, 2])
@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_audio_embeddings_start_as_loud_as_token_embeddings(kind: str, summary: int) -> None:
    model = build(kind, summary_tokens=summary).eval()
    rms = model.llm.embedding_rms
    frames = torch.randn(2, 40, model.encoder.hidden_size)
    embeds, mask = model.downsampler(frames, torch.ones(2, 40, dtype=torch.bool))
    assert embeds[mask].pow(2).mean().sqrt().item() == pytest.approx(rms, rel=0.05)


def test_explicit_output_scale_is_kept() -> None:
    down = partial(ConvDownsampler, strides=[2], output_scale=0.7)
    model = SpeechLLM(tiny_encoder("whisper"), down, tiny_llm("llama"))
    assert torch.all(model.downsampler.norms[-1].weight == 0.7)
    with pytest.raises(ValueError, match="output scale"):
        ConvDownsampler(4, 4, output_scale=0.0)
