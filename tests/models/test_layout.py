"""The row layout: one set of rules for speech rows, text rows and the distillation teacher."""

from __future__ import annotations

import pytest
import torch

from speechllm.models.layout import IGNORE, Row, RowLayout, next_token_loss
from speechllm.models.prompt import AUDIO, PromptTemplate
from speechllm.models.tiny import tiny_llm


def test_bos_leads_plain_prompts_and_never_chat_rendered_ones() -> None:
    llm = tiny_llm("llama")
    bos = llm.tokenizer.bos_token_id
    plain = RowLayout(llm, PromptTemplate("<a>{audio}</a> {instruction}: "))
    assert plain.prompt_ids("hi")[0][0] == bos
    chat = RowLayout(llm, PromptTemplate("<s>user {audio} {instruction} <s>assistant", chat=True))
    assert chat.prompt_ids("hi")[0] == llm.tokenize("<s>user ")
    assert plain.plain_row("abc").given == [[bos, *llm.tokenize("abc")]]


def test_encoder_decoder_prompts_end_with_eos_and_keep_targets_for_the_decoder() -> None:
    llm = tiny_llm("t5")
    layout = RowLayout(llm, PromptTemplate("{audio} {instruction}"))
    assert layout.prompt_ids("x")[-1][-1] == llm.eos_token_id
    row = layout.speech_row("x", {AUDIO: torch.zeros(2, llm.hidden_size)}, [5, 6])
    assert row.target == []


def test_summary_slot_and_transcript_slot_fill_in_order() -> None:
    llm = tiny_llm("llama")
    layout = RowLayout(llm, PromptTemplate("<a>{audio}</a> {instruction}: {summary}"))
    row = layout.speech_row("q", {AUDIO: llm.tokenize("red")}, [7])
    pieces = layout.prompt_ids("q")
    # a teacher fills {audio} with the transcript's ids and leaves {summary} empty
    assert row.given == [pieces[0], llm.tokenize("red"), pieces[1], [], pieces[2]]


def test_batch_left_pads_and_labels_only_targets() -> None:
    llm = tiny_llm("llama")
    layout = RowLayout(llm)
    rows = [layout.plain_row("a long prompt here", "x"), layout.plain_row("", "yz")]
    batch = layout.batch(rows)
    width = max(len(r) for r in rows)
    assert batch.embeds.shape[:2] == (2, width)
    assert batch.mask[1].tolist() == [0] * (width - len(rows[1])) + [1] * len(rows[1])
    for b, row in enumerate(rows):
        assert batch.labels[b][batch.labels[b] != IGNORE].tolist() == row.target
    ids = torch.tensor([rows[0].given[0] + rows[0].target])
    torch.testing.assert_close(batch.embeds[0], llm.embed(ids)[0])


def test_mixed_pieces_cast_audio_to_the_llms_dtype() -> None:
    llm = tiny_llm("llama", dtype=torch.bfloat16)
    layout = RowLayout(llm)
    row = Row([[1, 2], torch.ones(3, llm.hidden_size)], [4])
    batch = layout.batch([row])
    assert batch.embeds.dtype == torch.bfloat16 and batch.embeds.shape[1] == 6


def test_next_token_loss_skips_a_token_right_after_padding() -> None:
    llm = tiny_llm("qwen2")  # no bos: a continuation's first token follows padding
    layout = RowLayout(llm)
    rows = [layout.plain_row("", "abc"), layout.plain_row("", "abcdef")]
    loss = next_token_loss(llm, layout.batch(rows))
    assert torch.isfinite(loss)


def test_a_slot_the_template_lacks_is_an_error_not_silently_dropped() -> None:
    layout = RowLayout(tiny_llm("llama"), PromptTemplate("<a>{audio}</a> {instruction}: "))
    with pytest.raises(ValueError, match="not in the template"):
        layout.speech_row("q", {"audio": [5]}, [7])  # "audio", not the slot "{audio}"
