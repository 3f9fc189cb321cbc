"""A multi-label classification head on the LLM's pooled prompt states.

For tasks whose labels co-occur (the symptoms a dictation mentions), generating a label list
makes the model order and spell labels; a head scores every label at once and its sigmoid
outputs rank items for AUROC (Gema et al. 2023 put such a head on LLaMA for clinical tasks)::

    hidden (B, T, D) ─► pool over the unpadded prompt+audio ─► Linear(D, n_labels) ─► logits
      mask (B, T)        (mean, or the last token)                sigmoid / BCE per label
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

POOLING = ("mean", "last")


class ClassificationHead(nn.Module):
    """Pooled LLM state -> one logit per label, trained with binary cross-entropy.

    Targets are comma-separated label strings (``"cardiac, respiratory"``); a single-label
    task is the special case of one label per item.

    Args:
        hidden_size: the LLM's hidden size (filled in by :class:`SpeechLLM`).
        labels: the label set, in column order.
        pooling: ``mean`` over the non-padded positions, or ``last`` (the final prompt token,
            which a causal LM has let attend to everything before it).
    """

    def __init__(self, hidden_size: int, labels: Sequence[str], pooling: str = "mean") -> None:
        super().__init__()
        self.labels = [str(label).strip() for label in labels]
        if len(set(self.labels)) != len(self.labels) or len(self.labels) < 2:
            raise ValueError(f"a head needs at least two distinct labels, got {self.labels}")
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got {pooling!r}")
        self.pooling = pooling
        self.proj = nn.Linear(hidden_size, len(self.labels))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_labels)`` from states ``(B, T, D)``; ``mask`` is 1 on real positions."""
        mask = mask.to(hidden.dtype).unsqueeze(-1)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        else:  # rows are left-padded (SpeechLLM), so the last position is the last token
            pooled = hidden[:, -1]
        return self.proj(pooled.to(self.proj.weight.dtype))

    def targets(self, texts: Sequence[str]) -> torch.Tensor:
        """Multi-hot ``(B, n_labels)`` from comma-separated label strings."""
        out = torch.zeros(len(texts), len(self.labels), device=self.proj.weight.device)
        for b, text in enumerate(texts):
            for label in filter(None, (part.strip() for part in text.split(","))):
                if label not in self.labels:
                    raise ValueError(f"target label {label!r} is not in the head's {self.labels}")
                out[b, self.labels.index(label)] = 1.0
        return out

    def loss(self, logits: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Per-item BCE, averaged over labels: ``(B,)``."""
        bce = nn.functional.binary_cross_entropy_with_logits(
            logits.float(), self.targets(texts), reduction="none"
        )
        return bce.mean(-1)
