"""The LLM bootstrap's mixture schedule (copy-heavy first, then every task's text form) and its
text layout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "recipes" / "synthetic_tiny"))

from bootstrap_llm import asr_share, experiment_template, parse_args  # noqa: E402

from speechllm.models.layout import IGNORE, RowLayout, next_token_loss  # noqa: E402
from speechllm.models.tiny import tiny_llm  # noqa: E402


def test_share_holds_then_falls_linearly_to_the_final_share() -> None:
    share = asr_share(0.9, 0.3, 0.4)
    assert [share(p) for p in (0.0, 0.2, 0.4)] == [0.9, 0.9, 0.9]
    assert share(0.7) == pytest.approx(0.6)
    assert share(1.0) == pytest.approx(0.3)


def test_defaults_are_the_demo_recipe() -> None:
    args = parse_args(["--out", "x"])
    share = asr_share(args.asr_frac, args.final_asr_frac, args.mix_from)
    assert share(0.0) > 0.8 and share(1.0) < 0.5  # copying first, instructions at the end


def test_text_forms_are_laid_out_as_the_experiment_lays_out_speech() -> None:
    template = experiment_template(parse_args(["--out", "x"]).experiment)
    assert template.text("Transcribe.", audio="a cat") == "<audio>a cat</audio> Transcribe.: "


def test_text_rows_train_as_the_right_padded_hugging_face_loss() -> None:
    """Left-padded rows through the LLM wrapper give the loss of the plain right-padded layout
    (only the answer scored): the layout moved, the objective did not."""
    torch.manual_seed(0)
    llm = tiny_llm("llama")
    layout = RowLayout(llm)
    rows = [
        layout.plain_row("<audio>a cat</audio> Transcribe.: ", "a cat"),
        layout.plain_row("", "hi"),
    ]
    ours = next_token_loss(llm, layout.batch(rows))

    width = max(len(row) for row in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask, labels = torch.zeros_like(ids), torch.full_like(ids, IGNORE)
    for b, row in enumerate(rows):
        given = len(row.given[0])
        ids[b, : len(row)], mask[b, : len(row)] = torch.tensor(row.given[0] + row.target), 1
        labels[b, given : len(row)] = ids[b, given : len(row)]
    expected = llm.base_model(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(ours, expected)
    assert rows[1].given[0] == [llm.tokenizer.bos_token_id]  # a plain sentence: only bos given
