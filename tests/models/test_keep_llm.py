"""Keeping the LLM's mind: text-only rows, distillation from the text LLM, audio-gated LoRA."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.layout import IGNORE
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm, tiny_lora
from speechllm.testing import tiny_batches

TEMPLATE = "<audio>{audio}</audio> {instruction}: "


def build(audio_gated: bool = False, seed: int = 0) -> SpeechLLM:
    torch.manual_seed(seed)
    model = SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler),
        tiny_llm("llama", adapters={"speech": tiny_lora()}),
        TEMPLATE,
        audio_gated=audio_gated,
    )
    model.set_trainable(["downsampler", "lora"])
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # LoRA B starts at zero: give the adapter an effect
        for p in model.llm.adapter_parameters("speech"):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model.eval()


def mixed_batch() -> dict:
    """Four items: two with audio, two text-only (``audio_lengths`` 0, a padding row)."""
    batch = tiny_batches(1, 4, seed=2)[0]
    batch["audio"][2:] = 0.0
    batch["audio_lengths"][2:] = 0
    batch["instructions"][2:] = ["What is the capital of France?", ""]
    batch["targets"][2:] = ["paris", "a sentence to continue"]
    batch["tasks"][2:] = ["text", "text"]
    return batch


def test_text_rows_are_laid_out_as_text_turns_and_continuations() -> None:
    model = build()
    layout, tok = model.layout, model.llm.tokenizer
    row = layout.text_row("What is two plus two?", "four")
    assert row.given == [[tok.bos_token_id] + model.llm.tokenize("What is two plus two?\n")]
    assert row.target == model.llm.tokenize("four") + [model.llm.eos_token_id]
    continuation = layout.text_row("", "once upon a time")
    assert continuation.given == [[tok.bos_token_id]]  # everything after bos is scored
    assert continuation.target == layout.target_ids("once upon a time")


def test_a_mixed_batch_trains_text_rows_without_encoding_them() -> None:
    model = build()
    batch = mixed_batch()
    seen = []
    model.encoder.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    out = model(**batch)
    assert seen == [2]  # only the two speech items reach the encoder
    expected = [len(model.layout.target_ids(t)) for t in batch["targets"]]
    assert out.item_tokens.tolist() == expected
    text_alone = model(**{k: v[2:] for k, v in batch.items()})
    torch.testing.assert_close(text_alone.item_loss_sum, out.item_loss_sum[2:], atol=1e-5, rtol=0)


def _student_and_teacher_logits(model: SpeechLLM, batch: dict, transcripts: list[str]):
    """By hand: the student's rows (audio spliced) and the teacher's token ids (transcript in
    place of the audio), each scored on its own target at the end of the row."""
    encoded = model.encode_audio(batch["audio"], batch["audio_lengths"])
    targets = [model.layout.target_ids(t) for t in batch["targets"]]
    student_rows = model.lay_out(encoded, batch["instructions"], targets)
    student = model.llm(student_rows.embeds, student_rows.mask)
    tok = model.llm.tokenizer
    pairs = []
    for b, (instruction, transcript) in enumerate(
        zip(batch["instructions"], transcripts, strict=True)
    ):
        before, after = TEMPLATE.split("{audio}")
        ids = (
            [tok.bos_token_id]
            + model.llm.tokenize(before)
            + model.llm.tokenize(transcript)
            + model.llm.tokenize(after.replace("{instruction}", instruction))
            + targets[b]
        )
        with torch.no_grad(), model.llm.adapters_off():
            teacher = model.llm.base_model(input_ids=torch.tensor([ids])).logits[0]
        n = len(targets[b])
        s = student[b, -n - 1 : -1]  # positions predicting the target tokens
        t = teacher[-n - 1 : -1]
        pairs.append((t, s))
    return pairs


def test_kd_equals_a_hand_computed_kl_on_the_transcript_prompt() -> None:
    model = build()
    batch = tiny_batches(1, 3, seed=4)[0]
    transcripts = ["red green", "", "blue"]  # the middle item has none: no distillation
    out = model(**batch, objective={"lm": 0.0, "kd": 1.0}, transcripts=transcripts)
    pairs = _student_and_teacher_logits(model, batch, transcripts)
    kls, tokens = [], 0
    for b in (0, 2):
        t, s = pairs[b]
        kl = torch.nn.functional.kl_div(
            s.float().log_softmax(-1), t.float().log_softmax(-1), log_target=True, reduction="sum"
        )
        kls.append(kl)
        tokens += t.shape[0]
    expected = sum(kls) / tokens
    assert float(expected) > 1e-3  # the adapter makes the student differ from the teacher
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-5)


def test_kd_reaches_the_trainable_parts_and_adds_to_the_lm_loss() -> None:
    model = build()
    model.train()
    batch = tiny_batches(1, 2, seed=5)[0]
    lm = model(**batch).loss
    both = model(**batch, objective={"lm": 1.0, "kd": 0.5})
    kd = model(**batch, objective={"lm": 0.0, "kd": 1.0}).loss
    torch.testing.assert_close(both.loss, lm + 0.5 * kd, atol=1e-5, rtol=1e-5)
    both.loss.backward()
    assert model.downsampler.convs[0].weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.llm.adapter_parameters("speech"))


def test_items_without_a_target_learn_the_teachers_own_greedy_answer() -> None:
    model = build()
    batch = tiny_batches(1, 2, seed=6)[0]
    batch["targets"] = ["", "green"]
    transcripts = ["red blue", ""]
    filled = model.teacher.answers(batch["instructions"], batch["targets"], transcripts)
    assert filled[1] == "green"  # no transcript: nothing to ask the teacher
    rows = model.teacher.rows(batch["instructions"][:1], transcripts[:1], [0], None)
    prompt = model.layout.batch(rows)
    with model.llm.adapters_off():
        ids = model.llm.generate(
            prompt.embeds, prompt.mask, max_new_tokens=model.teacher.answer_tokens, do_sample=False
        )[0].tolist()
    eos = model.llm.eos_token_id
    expected = model.decode([ids[: ids.index(eos)] if eos in ids else ids])[0].strip()
    assert filled[0] == expected


def test_audio_gated_adapters_leave_text_rows_exactly_the_base_llm() -> None:
    model = build(audio_gated=True)
    batch = mixed_batch()
    gated = model._score_items(
        model.encode_audio(batch["audio"][:2], batch["audio_lengths"][:2]),
        [0, 1],
        batch["instructions"],
        batch["targets"],
    )[1]
    with model.llm.adapters_off():
        base = model._score_items(
            model.encode_audio(batch["audio"][:2], batch["audio_lengths"][:2]),
            [0, 1],
            batch["instructions"],
            batch["targets"],
        )[1]
    assert torch.equal(gated.logits[2:], base.logits[2:])  # text rows: the base, bit for bit
    assert not torch.allclose(gated.logits[:2], base.logits[:2])  # speech rows: adapted
    question = "What is the capital of France?"
    answer = model.generate_ids(None, [question], max_new_tokens=6)
    with model.llm.adapters_off():
        assert model.generate_ids(None, [question], max_new_tokens=6) == answer


def test_without_gating_text_rows_see_the_adapters() -> None:
    model = build(audio_gated=False)
    rows = model.layout.batch([model.layout.text_row("What is two plus two?", "four")])
    adapted = model.llm(rows.embeds, rows.mask)
    with model.llm.adapters_off():
        base = model.llm(rows.embeds, rows.mask)
    assert not torch.allclose(adapted, base)
    assert (rows.labels != IGNORE).sum() == len(model.layout.target_ids("four"))


@pytest.mark.parametrize("audio_gated", [False, True])
def test_gated_training_step_gets_gradients_from_speech_rows_only(audio_gated: bool) -> None:
    model = build(audio_gated=audio_gated)
    model.train()
    batch = mixed_batch()
    model(**{k: v[2:] for k, v in batch.items()}).loss.backward()
    grads = [p.grad for p in model.llm.adapter_parameters("speech")]
    touched = any(g is not None and g.abs().sum() > 0 for g in grads)
    assert touched is not audio_gated
