"""The row layout: prompt, audio slots and target -> left-padded embeddings, mask and labels.

Every sequence the LLM reads is laid out here, for speech and text alike, so the rules (where
``bos`` goes, the chat template, ``eos`` after a target, left padding, which tokens are scored)
have one home::

    speech item   [pad..][bos][ prompt before {audio} ][ audio ][ prompt after ][ target ][eos]
    teacher (KD)  [pad..][bos][ prompt before {audio} ][ transcript ids ][ prompt after ][ ... ]
    text item     [pad..][ instruction as a text turn (chat template, else ``text\\n``) ][ ... ]
    continuation  [pad..][bos][ target ][eos]           (text alone: everything after bos scored)
                                                         └ labels: target and eos ┘

``bos`` leads a row unless the LLM has none, is an encoder-decoder (its prompt ends with
``eos`` instead and the target goes to the decoder), or the prompt was rendered by a chat
template (which already holds every special token the model expects). Rows are left-padded
and positions come from the attention mask (``LLM.forward``), so a target always ends its row
(only its logits are computed) and batched generation sees the positions a lone row would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from speechllm.models.llm import LLM
from speechllm.models.prompt import PromptTemplate, chat_prompt

IGNORE = -100
"""Label of a position that is not scored (prompt, audio, padding)."""

Piece = list[int] | torch.Tensor
"""Token ids, or embeddings ``(n, D)`` already in the LLM's input space (audio)."""


@dataclass(frozen=True)
class Row:
    """One sequence: what the model is given, then the target ids it is scored on."""

    given: list[Piece]
    target: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(piece) for piece in self.given) + len(self.target)


class Rows(NamedTuple):
    """A left-padded batch of rows in the LLM's dtype."""

    embeds: torch.Tensor
    """``(B, W, D)`` input embeddings; zeros on padding."""
    mask: torch.Tensor
    """``(B, W)`` attention mask."""
    labels: torch.Tensor
    """``(B, W)`` target ids where scored, :data:`IGNORE` elsewhere."""


class RowLayout:
    """Turns instructions, audio slots and targets into :class:`Row` s for one LLM.

    Args:
        llm: the LLM whose tokenizer and embeddings the rows use.
        template: the speech prompt template; ``None`` for text-only use (plain rows).
        system_prompt: the system turn of text items' chat prompts (as the speech template's).
    """

    def __init__(
        self, llm: LLM, template: PromptTemplate | None = None, system_prompt: str | None = None
    ) -> None:
        self.llm = llm
        self.template = template
        self.system_prompt = system_prompt

    # ------------------------------------------------------------------ token ids
    def _bos(self, chat: bool) -> list[int]:
        bos = self.llm.tokenizer.bos_token_id
        return [] if bos is None or chat or self.llm.is_encoder_decoder else [bos]

    def prompt_ids(self, instruction: str) -> list[list[int]]:
        """Token ids of the speech template's text around its slots: one list more than
        slots, ``bos`` leading (or ``eos`` closing, encoder-decoder)."""
        template = self._speech_template()
        ids = [self.llm.tokenize(text) for text in template.pieces(instruction)]
        ids[0] = self._bos(template.chat) + ids[0]
        if self.llm.is_encoder_decoder:
            ids[-1] = ids[-1] + [self.llm.eos_token_id]
        return ids

    def prompt_length(self, instruction: str) -> int:
        """Text tokens of ``instruction``'s speech prompt (the audio adds its embeddings)."""
        return sum(len(ids) for ids in self.prompt_ids(instruction))

    def target_ids(self, target: str) -> list[int]:
        """``target`` and ``eos``: what a row is scored on."""
        return self.llm.tokenize(target) + [self.llm.eos_token_id]

    def _speech_template(self) -> PromptTemplate:
        if self.template is None:
            raise ValueError("this layout has no speech prompt template (text rows only)")
        return self.template

    # ------------------------------------------------------------------ rows
    def speech_row(
        self, instruction: str, slots: Mapping[str, Piece], target: list[int] | None = None
    ) -> Row:
        """The speech prompt with each slot filled (audio embeddings, or a transcript's token
        ids for a text teacher); ``target`` ids follow unless the LLM is an encoder-decoder.

        A slot missing from ``slots`` (``{summary}`` for a teacher) stays empty.
        """
        template = self._speech_template()
        unknown = set(slots) - set(template.slots)
        if unknown:
            raise ValueError(f"slots {sorted(unknown)} are not in the template's {template.slots}")
        pieces = self.prompt_ids(instruction)
        given: list[Piece] = [pieces[0]]
        for slot, text in zip(template.slots, pieces[1:], strict=True):
            given += [slots.get(slot, []), text]
        tail = [] if target is None or self.llm.is_encoder_decoder else target
        return Row(given, list(tail))

    def item_row(
        self, instruction: str, slots: Mapping[str, Piece] | None, target: list[int] | None
    ) -> Row:
        """One batch item's row: a speech item with its ``slots`` filled
        (:meth:`speech_row`), or with ``slots`` ``None`` a text-only item (:meth:`text_row`);
        ``target`` ids follow."""
        if slots is not None:
            return self.speech_row(instruction, slots, target)
        return Row(self.text_row(instruction).given, [] if target is None else list(target))

    def text_prompt(self, instruction: str) -> str:
        """A text-only instruction as the LLM takes it without audio: the user turn of its chat
        template when the speech template uses one, else the instruction and a newline."""
        template = self.template
        if template is not None and template.chat:
            return chat_prompt(self.llm.tokenizer, instruction, self.system_prompt)
        return instruction + "\n"

    def text_row(self, instruction: str, target: str | None = None) -> Row:
        """A text item: its instruction as a text turn, then ``target``; an empty instruction
        makes a continuation row (``[bos] target [eos]``, all of it scored)."""
        if not instruction:
            return self.plain_row("", target or "")
        chat = self.template is not None and self.template.chat
        given = self._bos(chat) + self.llm.tokenize(self.text_prompt(instruction))
        return Row([given], [] if target is None else self.target_ids(target))

    def plain_row(self, text: str, target: str | None = "", max_tokens: int | None = None) -> Row:
        """``[bos] text`` given, then ``target [eos]`` scored (``None``: nothing scored, no
        ``eos``): text-only training and classification read raw text this way.

        ``max_tokens`` bounds the text and target tokens together (a long note is read as far
        as a model reads, its first tokens): the text keeps its first ``max_tokens``, the target
        the rest of the budget, and a cut target gets no ``eos`` (its text did not end there).
        """
        ids = self.llm.tokenize(text)[:max_tokens]
        given = self._bos(chat=False) + ids
        if target is None:
            return Row([given])
        scored = self.target_ids(target)
        if max_tokens is not None and len(ids) + len(scored) - 1 > max_tokens:
            scored = scored[: max_tokens - len(ids)]
        return Row([given], scored)

    # ------------------------------------------------------------------ batches
    def batch(self, rows: Sequence[Row], device: torch.device | str | None = None) -> Rows:
        """Left-padded embeddings (one embedding lookup for every row's ids), mask, labels.

        Rows are built in the LLM's own dtype (its token embeddings'): audio pieces are cast at
        this boundary, so the LLM never sees a dtype it was not loaded in.
        """
        embedding = self.llm.base_model.get_input_embeddings()
        device = device if device is not None else embedding.weight.device
        id_pieces = [
            piece for row in rows for piece in [*row.given, row.target] if isinstance(piece, list)
        ]
        flat = torch.tensor([i for ids in id_pieces for i in ids], dtype=torch.long, device=device)
        embedded = iter(embedding(flat).split([len(ids) for ids in id_pieces]))
        dtype = embedding.weight.dtype
        width = max(len(row) for row in rows)
        embeds = torch.zeros(len(rows), width, embedding.embedding_dim, dtype=dtype, device=device)
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long, device=device)
        for b, row in enumerate(rows):
            parts = [
                next(embedded) if isinstance(p, list) else p.to(dtype)
                for p in [*row.given, row.target]
            ]
            start = width - len(row)
            embeds[b, start:] = torch.cat(parts)
            mask[b, start:] = 1
            if row.target:
                labels[b, width - len(row.target) :] = torch.tensor(row.target, device=device)
        return Rows(embeds, mask, labels)

    def decoder_labels(
        self, targets: Sequence[list[int]], device: torch.device | str | None = None
    ) -> torch.Tensor:
        """An encoder-decoder's right-padded decoder labels ``(B, longest)``."""
        width = max(len(t) for t in targets)
        labels = torch.full((len(targets), width), IGNORE, dtype=torch.long, device=device)
        for b, ids in enumerate(targets):
            labels[b, : len(ids)] = torch.tensor(ids, device=device)
        return labels


def scored_width(rows: Rows) -> int:
    """Positions from the first scored token to the end, plus the one that predicts it: the
    logits a decoder-only LLM must keep to score every row."""
    width = rows.labels.shape[1]
    scored = (rows.labels != IGNORE).any(0).nonzero()
    return 1 if scored.numel() == 0 else min(width, width - int(scored[0]) + 1)


def shift(logits: torch.Tensor, rows: Rows, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept logits ``(B, keep - 1, V)`` that predict a next token, and those tokens'
    labels: a token right after padding has nothing to be predicted from and is not scored."""
    labels = rows.labels[:, -keep + 1 :].masked_fill(rows.mask[:, -keep:-1] == 0, IGNORE)
    return logits[:, -keep:-1], labels


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row cross-entropy sums (float32) and scored-token counts."""
    loss = nn.functional.cross_entropy(
        logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
    )
    counted = labels != IGNORE
    return (loss * counted).sum(-1), counted.sum(-1)


def next_token_loss(llm: LLM, rows: Rows) -> torch.Tensor:
    """Mean cross-entropy of a decoder-only LLM over every scored token of ``rows``."""
    keep = scored_width(rows)
    logits, labels = shift(llm(rows.embeds, rows.mask, logits_to_keep=keep), rows, keep)
    item_sum, item_tokens = token_losses(logits, labels)
    return item_sum.sum() / item_tokens.sum().clamp(min=1)
