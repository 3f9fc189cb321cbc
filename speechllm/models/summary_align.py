"""Utterance embeddings aligned to their task's label words over the frozen LLM's vocabulary.

Clip-level tasks (gender, accent, emotion, speaker count) are read off the downsampler's
utterance embeddings (``summary_tokens``), but through the frozen LLM the LM loss teaches them
slowly: after hundreds of multitask steps the answers sit near chance while a linear probe on the
same pooled encoder features separates the classes. As CTC does for the frame embeddings
(:mod:`speechllm.models.ctc`), this objective needs no pass through the LLM: each utterance
embedding assigned to a task is scored against the LLM's own input-embedding matrix and
trained to point where the LLM embeds the item's answer, so the frozen LLM reads it as the
label's words before any adapter learns to::

    summary[b, k] (D) ──cos / T──> logits over K rows of E: the batch's label token ids plus
                                   ``negatives`` random ids (a sampled softmax over V)
    loss[b] = mean over the answer's token ids t of -log softmax(logits)[t]

Utterance embedding ``k`` belongs to ``tasks[k]``: one clip has a gender, an accent and an
emotion at once, so each task needs its own embedding to point at its label. Cosine with a
fixed temperature leaves the embedding's norm to the downsampler's output scale (the LLM's
token-embedding RMS), where the LLM expects it. No library ships this; it is the CTC aligner's
idea applied to one position per task.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from speechllm.models.ctc import sampled_vocabulary


class SummaryAligner(nn.Module):
    """The ``summary`` objective: utterance embedding ``k`` toward the LLM's embeddings of the
    answer words of task ``tasks[k]``. It has no parameters of its own.

    Args:
        tasks: the task each utterance embedding is aligned on, in order (at most the
            downsampler's ``summary_tokens``).
        temperature: divides the cosine similarities.
        negatives: random vocabulary ids added to each step's softmax.
    """

    def __init__(
        self, tasks: Sequence[str], temperature: float = 0.1, negatives: int = 2048
    ) -> None:
        super().__init__()
        self.tasks = [str(task) for task in tasks]
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"summary_align needs distinct tasks, got {self.tasks}")
        if temperature <= 0 or negatives < 0:
            raise ValueError(
                f"temperature must be > 0 and negatives >= 0, got {temperature}, {negatives}"
            )
        self.temperature = temperature
        self.negatives = negatives

    def slot(self, task: str) -> int | None:
        """The utterance embedding aligned on ``task``, or ``None``."""
        return self.tasks.index(task) if task in self.tasks else None

    def forward(
        self, summary: torch.Tensor, answer_ids: list[list[int]], vocabulary: torch.Tensor
    ) -> torch.Tensor:
        """Per-item loss ``(B,)`` (summed over each answer's tokens) of the utterance embeddings
        ``summary`` ``(B, D)`` (each item's own slot) against ``answer_ids``, over rows of
        ``vocabulary`` ``(V, D)``."""
        if any(not ids for ids in answer_ids):
            raise ValueError("every aligned item needs an answer of at least one token")
        device = summary.device
        flat = torch.tensor([i for ids in answer_ids for i in ids], device=device)
        candidates = sampled_vocabulary(flat, vocabulary.shape[0], self.negatives)
        rows = F.normalize(vocabulary[candidates].float(), dim=-1)
        logits = F.normalize(summary.float(), dim=-1) @ rows.T / self.temperature
        log_probs = logits.log_softmax(-1)
        item = torch.repeat_interleave(
            torch.arange(len(answer_ids), device=device),
            torch.tensor([len(ids) for ids in answer_ids], device=device),
        )
        picked = log_probs[item, torch.searchsorted(candidates, flat)]
        return -torch.zeros(len(answer_ids), device=device).index_add(0, item, picked)
