"""Text rows laid out as ``SpeechLLM`` lays out a prompt and its target, and their loss.

For training an LLM on text alone (a domain adapter, a demo's bootstrapped base) in the layout
it will see with audio::

    [pad ... pad][bos][prompt][target][eos]
                             └─ scored ─┘

Rows are left-padded and positions come from the attention mask (``LLM.forward``), so a row
trains exactly as it would alone.
"""

from __future__ import annotations

import torch
from torch import nn

from speechllm.models.llm import LLM
from speechllm.models.speech_llm import IGNORE

Row = tuple[list[int], int]
"""A row's token ids and how many of them (bos and prompt) are given rather than scored."""


def text_row(llm: LLM, prompt: str, target: str) -> Row:
    """``[bos] prompt target [eos]`` (no bos for LLMs without one, e.g. Qwen)."""
    bos = llm.tokenizer.bos_token_id
    given = ([] if bos is None else [bos]) + llm.tokenize(prompt)
    return given + llm.tokenize(target) + [llm.eos_token_id], len(given)


def pad_left(
    rows: list[Row], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded ``ids``, ``attention_mask`` and ``labels`` (:data:`IGNORE` on padding and on
    each row's given tokens); padding ids are masked, so their value never matters."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for b, (row, given) in enumerate(rows):
        start = width - len(row)
        ids[b, start:] = torch.tensor(row, device=device)
        mask[b, start:] = 1
        labels[b, start + given :] = ids[b, start + given :]
    return ids, mask, labels


def next_token_loss(
    llm: LLM, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of the labelled tokens, each predicted from the tokens before it (a
    token right after padding has nothing to be predicted from and is not scored)."""
    logits = llm(llm.embed(ids), mask)[:, :-1]
    targets = labels[:, 1:].masked_fill(mask[:, :-1] == 0, IGNORE)
    return nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE)
