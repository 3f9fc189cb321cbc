from functools import partial

import pytest
import torch

from speechllm.models.ctc import CTCAligner
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.layout import IGNORE
from speechllm.models.prompt import AUDIO, SUMMARY
from speechllm.models.speech_llm import AudioEmbeddings, SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm, tiny_lora
from speechllm.testing import tiny_batches

SUMMARY_LAST = "<audio>{audio}</audio> {instruction}: {summary}"


def build(
    llm_kind: str = "llama", summary_tokens: int = 0, template: str | None = None, **adapters
) -> SpeechLLM:
    return SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler, summary_tokens=summary_tokens),
        tiny_llm(llm_kind, adapters=adapters),
        **({"prompt_template": template} if template else {}),
    ).eval()


def test_downsampler_sizes_must_match() -> None:
    with pytest.raises(ValueError, match="downsampler maps"):
        SpeechLLM(tiny_encoder("wavlm"), ConvDownsampler(32, 16), tiny_llm("llama"))
    with pytest.raises(ValueError, match="placeholder"):
        SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm(), "{instruction}")
    with pytest.raises(ValueError, match="summary_tokens"):
        build(template=SUMMARY_LAST)


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_summary_slot_puts_utterance_embeddings_right_before_the_answer(kind: str) -> None:
    model = build(kind, summary_tokens=2, template=SUMMARY_LAST)
    batch = tiny_batches(1, 3)[0]
    embeds, lengths = model.encode_audio(batch["audio"], batch["audio_lengths"])
    targets = [model.layout.target_ids(t) for t in batch["targets"]]
    inputs, mask, labels = model.lay_out(
        AudioEmbeddings(embeds, lengths), batch["instructions"], targets
    )
    for b, n in enumerate(lengths.tolist()):
        summary = embeds[b, n - 2 : n]
        if kind == "t5":  # the encoder input ends with the summary and eos
            assert torch.equal(inputs[b, -3:-1], summary)
        else:  # the answer's first token is predicted from the last summary embedding
            first_target = int((labels[b] != IGNORE).nonzero()[0])
            assert torch.equal(inputs[b, first_target - 2 : first_target], summary)
        frames = embeds[b, : n - 2]  # frame embeddings stay inside <audio>...</audio>
        start = int((mask[b] == 0).sum()) + len(model.layout.prompt_ids("")[0])
        assert torch.equal(inputs[b, start : start + n - 2], frames)


@pytest.mark.parametrize("summary, template", [(0, None), (2, None), (2, SUMMARY_LAST)])
def test_labels_cover_exactly_target_and_eos(summary: int, template: str | None) -> None:
    model = build(summary_tokens=summary, template=template)
    batch = tiny_batches(1, 3)[0]
    embeds, lengths = model.encode_audio(batch["audio"], batch["audio_lengths"])
    targets = [model.layout.target_ids(t) for t in batch["targets"]]
    inputs, mask, labels = model.lay_out(
        AudioEmbeddings(embeds, lengths), batch["instructions"], targets
    )
    for b, ids in enumerate(targets):
        row = labels[b][labels[b] != IGNORE].tolist()
        assert row == ids and row[-1] == model.llm.eos_token_id
        assert labels[b, -len(ids) :].tolist() == ids  # targets end the row (left padding)
        prompt = sum(map(len, model.layout.prompt_ids(batch["instructions"][b]))) + int(lengths[b])
        assert int(mask[b].sum()) == prompt + len(ids)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_causal_loss_equals_hugging_face_loss(kind: str) -> None:
    model = build(kind)
    batch = tiny_batches(1, 3)[0]
    out = model(**batch)
    embeds, lengths = model.encode_audio(batch["audio"], batch["audio_lengths"])
    inputs, mask, labels = model.lay_out(
        AudioEmbeddings(embeds, lengths),
        batch["instructions"],
        [model.layout.target_ids(t) for t in batch["targets"]],
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
    inputs, mask, _ = model.lay_out(AudioEmbeddings(embeds, lengths), batch["instructions"], None)
    ids = [model.layout.target_ids(t) for t in batch["targets"]]
    labels = torch.full((3, max(map(len, ids))), IGNORE)
    for b, row in enumerate(ids):
        labels[b, : len(row)] = torch.tensor(row)
    reference = model.llm.base_model(inputs_embeds=inputs, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(out.loss, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("summary, template", [(0, None), (2, None), (2, SUMMARY_LAST)])
@pytest.mark.parametrize("kind", ["llama", "gpt2", "t5"])
def test_batched_generate_equals_unbatched(kind: str, summary: int, template: str | None) -> None:
    torch.manual_seed(1)
    model = build(kind, summary_tokens=summary, template=template)
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


def test_ctc_compress_needs_an_aligner() -> None:
    with pytest.raises(ValueError, match="ctc_compress"):
        SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm(), ctc_compress=True)


def test_ctc_compress_lays_out_the_aligner_path_then_the_utterance_embeddings() -> None:
    torch.manual_seed(0)
    model = SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler, summary_tokens=2),
        tiny_llm("llama"),
        prompt_template=SUMMARY_LAST,
        ctc=CTCAligner,
        ctc_compress=True,
    )
    batch = tiny_batches(1, 3, seed=2)[0]
    embeds, frame_mask = model.downsampler(*model.encoder(batch["audio"], batch["audio_lengths"]))
    encoded = AudioEmbeddings(embeds, frame_mask.sum(-1))  # frames, then 2 utterance embeddings
    vocabulary = model.llm.base_model.get_input_embeddings().weight
    tokens, n_tokens = model.ctc.compress(encoded.embeds, encoded.lengths - 2, vocabulary)
    targets = [model.layout.target_ids(t) for t in batch["targets"]]
    read = model.encode_audio(batch["audio"], batch["audio_lengths"])  # what the LLM reads
    assert read.lengths.tolist() == (n_tokens + 2).tolist()
    inputs, mask, labels = model.lay_out(read, batch["instructions"], targets)
    plain = model.layout.batch(
        [
            model.layout.item_row(
                instruction,
                {AUDIO: tokens[b, :n], SUMMARY: encoded.embeds[b, m - 2 : m]},
                targets[b],
            )
            for b, (instruction, n, m) in enumerate(
                zip(batch["instructions"], n_tokens.tolist(), encoded.lengths.tolist(), strict=True)
            )
        ]
    )
    torch.testing.assert_close(inputs, plain.embeds)
    assert torch.equal(mask, plain.mask) and torch.equal(labels, plain.labels)
    out = model(**batch)
    out.loss.backward()
    assert model.downsampler.convs[0].weight.grad.abs().sum() > 0
    assert model.ctc.log_scale.grad is not None


def test_a_detached_ctc_path_leaves_the_alignment_to_the_ctc_loss() -> None:
    with pytest.raises(ValueError, match="ctc_compress_detach"):
        SpeechLLM(
            tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm(), ctc=CTCAligner,
            ctc_compress_detach=True,
        )  # fmt: skip
    torch.manual_seed(0)
    model = SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler, summary_tokens=1),
        tiny_llm("llama", adapters={"default": tiny_lora()}),
        ctc=CTCAligner,
        ctc_compress=True,
        ctc_compress_detach=True,
    )
    model.set_trainable(["downsampler", "ctc", "lora"])
    batch = tiny_batches(1, 3, seed=2)[0]
    model(**batch, objective={"lm": 1.0}).loss.backward()

    def moved(p: torch.Tensor) -> bool:
        return p.grad is not None and bool(p.grad.abs().sum() > 0)

    assert not moved(model.ctc.log_scale) and not moved(model.ctc.blank)
    assert not moved(model.downsampler.convs[0].weight)  # frames reach the LLM via the path only
    assert model.downsampler.summary.weight.grad.abs().sum() > 0  # utterance embeddings train
    model.zero_grad()
    model(**batch, objective={"ctc": 1.0}).loss.backward()
    assert model.downsampler.convs[0].weight.grad.abs().sum() > 0
