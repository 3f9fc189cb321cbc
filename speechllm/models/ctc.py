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

Once aligned, the same scores can also shape what the LLM reads (:meth:`CTCAligner.compress`,
``SpeechLLM(ctc_compress=True)``): CTC's greedy path, blank frames dropped and repeated frames
merged, each kept position the posterior-weighted mean of the LLM's own token embeddings. The
frozen LLM then reads something close to the tokens spoken, at about one position per token,
instead of learning to read continuous frames (as CTC-compressed prompts for decoder-only ASR,
Wu et al. 2023). No library ships this over an arbitrary LLM's embedding matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sampled_vocabulary(ids: torch.Tensor, size: int, negatives: int) -> torch.Tensor:
    """The sorted candidate ids of a sampled softmax over a vocabulary of ``size``: every id in
    ``ids`` plus ``negatives`` random ones, redrawn per call (also the summary aligner's)."""
    drawn = torch.randint(0, size, (negatives,), device=ids.device)
    return torch.unique(torch.cat([ids, drawn]))  # sorted


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
        candidates = sampled_vocabulary(needed, vocabulary.shape[0], self.negatives)
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

    def logits(self, frames: torch.Tensor, vocabulary: torch.Tensor) -> torch.Tensor:
        """Each frame's scores ``(B, T', 1 + V)`` over the blank (0) and the whole vocabulary."""
        rows = torch.cat([self.blank[None], vocabulary.to(self.blank.dtype)])
        return frames.float() @ rows.float().T * self.log_scale.exp()

    def greedy_ids(
        self, frames: torch.Tensor, lengths: torch.Tensor, vocabulary: torch.Tensor
    ) -> list[list[int]]:
        """The token ids of CTC's greedy path over ``frames`` (``lengths`` valid): each frame's
        best class, repeats merged, then blanks dropped. The transcript the aligner alone gives,
        which tells whether it or the LLM reading its path limits a transcript."""
        best = self.logits(frames, vocabulary).argmax(-1).tolist()
        items = []
        for path, n in zip(best, lengths.tolist(), strict=True):
            path = path[:n]
            merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
            items.append([c - 1 for c in merged if c != 0])
        return items

    def compress(
        self, frames: torch.Tensor, lengths: torch.Tensor, vocabulary: torch.Tensor, top_k: int = 8
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames`` ``(B, T', D)`` (``lengths`` valid) collapsed along CTC's greedy path over
        the whole ``vocabulary`` ``(V, D)``: ``(B, N, D)`` embeddings and ``(B,)`` lengths.

        A frame whose best class is the blank is dropped; a run of frames with the same best
        token becomes one position, the mean of its frames' embeddings; a frame's embedding is
        its ``top_k`` tokens' rows weighted by their renormalised posteriors, so gradients
        reach the frames through the posteriors. An item whose every frame is blank keeps its
        least blank frame (a row never loses its audio entirely).
        """
        logits = self.logits(frames, vocabulary)
        best = logits.argmax(-1)
        top, ids = logits[..., 1:].topk(min(top_k, len(vocabulary)), dim=-1)
        weights = top.softmax(-1)  # the posteriors renormalised over the top tokens, stably
        tokens = (weights[..., None] * vocabulary[ids].float()).sum(-2)  # (B, T', D)
        items = []
        for b, n in enumerate(lengths.tolist()):
            path = best[b, :n]
            keep = path != 0
            if not bool(keep.any()):
                keep = torch.zeros_like(keep)
                keep[(logits[b, :n, 0] - top[b, :n, 0]).argmin()] = True
            changed = (path[1:] != path[:-1]) | ~keep[:-1]
            starts = keep & torch.cat([keep.new_ones(1), changed])
            segment = (starts.cumsum(0) - 1)[keep]
            kept = tokens[b, :n][keep]
            count = int(segment.max()) + 1
            total = kept.new_zeros(count, kept.shape[1]).index_add(0, segment, kept)
            items.append(total / torch.bincount(segment, minlength=count)[:, None].to(kept.dtype))
        out_lengths = torch.tensor([len(item) for item in items], device=frames.device)
        out = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
        return out.to(frames.dtype), out_lengths
