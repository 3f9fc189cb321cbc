"""CTC over the frozen LLM's vocabulary: an alignment loss that needs no pass through the LLM.

Stage 1 of the curriculum asks the downsampler to put each stretch of speech where the LLM
embeds the words spoken, but through the frozen LLM the signal reaching it is weak and slow (a
few thousand steps on a real base before answers follow the audio). Scoring each downsampled
frame against the LLM's own input-embedding matrix, with one learned blank row, and training
with CTC against the transcript's token ids teaches the same thing directly, at the cost of a
matrix product per frame::

    frames (B, T', D) ──·──> logits (B, T', 1 + K) = scale * [frame·blank, frame·E[k] for k in K]
                        └ E: the LLM's frozen token embeddings (V, D); K: the batch's target ids
                          plus ``negatives`` random ids (a sampled softmax over V)

The softmax runs over a sample of the vocabulary, not all of it: every id a target needs plus
random negatives, redrawn each step, keeps the cost independent of V (49k for SmolLM2) while
every id is pushed down often enough. torch's ``ctc_loss`` is the field's implementation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CTCAligner(nn.Module):
    """A blank embedding and a learned logit scale; the vocabulary rows are the LLM's.

    Args:
        hidden_size: the LLM's embedding size.
        negatives: random vocabulary ids added to each step's softmax.
    """

    def __init__(self, hidden_size: int, negatives: int = 2048) -> None:
        super().__init__()
        self.blank = nn.Parameter(torch.zeros(hidden_size))
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.negatives = negatives

    def forward(
        self,
        frames: torch.Tensor,
        lengths: torch.Tensor,
        target_ids: list[list[int]],
        vocabulary: torch.Tensor,
    ) -> torch.Tensor:
        """Per-item CTC loss (summed over the item's tokens) of ``frames`` ``(B, T', D)``
        (``lengths`` valid) against ``target_ids``, over rows of ``vocabulary`` ``(V, D)``."""
        device = frames.device
        needed = torch.tensor(
            sorted({i for ids in target_ids for i in ids}), device=device, dtype=torch.long
        )
        drawn = torch.randint(0, vocabulary.shape[0], (self.negatives,), device=device)
        candidates = torch.unique(torch.cat([needed, drawn]))  # sorted
        rows = torch.cat([self.blank[None], vocabulary[candidates].to(self.blank.dtype)])
        logits = frames.float() @ rows.float().T * self.log_scale.exp()
        log_probs = logits.log_softmax(-1).transpose(0, 1)  # (T', B, 1 + K)
        flat = torch.tensor([i for ids in target_ids for i in ids], device=device, dtype=torch.long)
        targets = torch.searchsorted(candidates, flat) + 1  # 0 is the blank
        target_lengths = torch.tensor([len(ids) for ids in target_ids], device=device)
        return F.ctc_loss(
            log_probs,
            targets,
            lengths.to(device),
            target_lengths,
            blank=0,
            reduction="none",
            zero_infinity=True,
        )
