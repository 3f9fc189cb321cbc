"""Distillation from the text LLM: the frozen LLM reads the transcript where the audio goes.

Ultravox trains its speech model to match, token by token, what the text LLM predicts when it
reads the transcript instead of the audio; the speech model then answers as the LLM would
have, rather than only in the style of its training targets. Here the teacher is the same
frozen LLM with every adapter off, so it costs one no-grad forward per batch and no second
model::

    student  [bos][ prompt before ][ audio embeddings ][ prompt after ][ target ]
    teacher  [bos][ prompt before ][ transcript ids   ][ prompt after ][ target ]
                                                                        └ KL(teacher || student)
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from speechllm.models.layout import IGNORE, Row, RowLayout, shift
from speechllm.models.prompt import AUDIO


class Scored(NamedTuple):
    """The logits that scored a batch's targets: ``logits`` ``(N, K, V)`` predict ``labels``
    ``(N, K)`` (:data:`IGNORE` where nothing is scored); row ``j`` is item ``items[j]``."""

    logits: torch.Tensor
    labels: torch.Tensor
    items: list[int]


def kl_per_token(
    teacher: torch.Tensor, student: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean over scored positions of KL(teacher || student), in float32 (``teacher`` may be
    half precision: its softmax is taken after the cast)."""
    scored = labels != IGNORE
    log_t = teacher.float()[scored].log_softmax(-1)
    log_s = student.float()[scored].log_softmax(-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    return kl.sum() / scored.sum().clamp(min=1)


class TextTeacher:
    """The frozen LLM (adapters off) as the teacher of a speech model laid out by ``layout``.

    Args:
        layout: the speech model's row layout (its LLM, prompt template and chat rules).
        answer_tokens: longest answer the teacher writes for an item without a target.
    """

    def __init__(self, layout: RowLayout, answer_tokens: int = 64) -> None:
        self.layout = layout
        self.llm = layout.llm
        self.answer_tokens = answer_tokens

    def rows(
        self,
        instructions: list[str],
        transcripts: list[str],
        speech: list[int],
        targets: list[list[int]] | None,
    ) -> list[Row]:
        """The teacher's view of each item: items ``speech`` with their transcript's token ids
        in place of the audio (and nothing for ``{summary}``), text-only items as they are."""
        speech_set = set(speech)
        return [
            self.layout.item_row(
                instruction,
                {AUDIO: self.llm.tokenize(transcripts[i])} if i in speech_set else None,
                None if targets is None else targets[i],
            )
            for i, instruction in enumerate(instructions)
        ]

    @torch.no_grad()
    def answers(
        self, instructions: list[str], targets: list[str], transcripts: list[str]
    ) -> list[str]:
        """``targets`` with each empty one (instruction data without an answer) replaced by the
        teacher's own greedy answer to the item's instruction and transcript, as Ultravox's
        continuation data is made; items without a transcript keep theirs."""
        empty = [i for i, t in enumerate(targets) if not t and transcripts[i]]
        if not empty:
            return targets
        rows = self.rows(
            [instructions[i] for i in empty],
            [transcripts[i] for i in empty],
            list(range(len(empty))),
            None,
        )
        batch = self.layout.batch(rows)
        with self.llm.adapters_off():
            out = self.llm.generate(
                batch.embeds, batch.mask, max_new_tokens=self.answer_tokens, do_sample=False
            )
        answers = self.llm.tokenizer.batch_decode(
            self.llm.until_eos(out.tolist()), skip_special_tokens=True
        )
        filled = list(targets)
        for i, answer in zip(empty, answers, strict=True):
            filled[i] = answer.strip()
        return filled

    def kl(
        self,
        student: Scored,
        instructions: list[str],
        transcripts: list[str],
        speech: list[int],
    ) -> torch.Tensor:
        """KL(teacher || student) per answer token, mean over the tokens of items with a
        transcript (and text-only items), the teacher scored on the student's own targets in
        no-grad and in the LLM's dtype."""
        speech_set = set(speech)
        items = [
            (j, i) for j, i in enumerate(student.items) if i not in speech_set or transcripts[i]
        ]
        if not items:
            return student.logits.sum() * 0.0
        picked = [j for j, _ in items]
        labels = student.labels[picked]
        width = labels.shape[1] + 1
        targets = [[t for t in row.tolist() if t != IGNORE] for row in labels]
        rows = self.rows(
            [instructions[i] for _, i in items],
            [transcripts[i] for _, i in items],
            [k for k, (_, i) in enumerate(items) if i in speech_set],
            targets,
        )
        with torch.no_grad(), self.llm.adapters_off():
            teacher_rows = self.layout.batch(rows)
            logits = self.llm(teacher_rows.embeds, teacher_rows.mask, logits_to_keep=width)
            teacher, _ = shift(logits, teacher_rows, width)
        return kl_per_token(teacher, student.logits[picked], labels)
