"""The CTC aligner: CTC over the frozen LLM's vocabulary, with a sampled softmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from speechllm.models import CTCAligner


def test_with_every_id_sampled_it_is_plain_ctc_over_blank_plus_vocabulary() -> None:
    torch.manual_seed(0)
    vocab, frames = torch.randn(12, 8), torch.randn(2, 7, 8)
    lengths, targets = torch.tensor([7, 5]), [[3, 3, 9], [1]]
    aligner = CTCAligner(8, negatives=500)  # 500 draws from 12 ids: every id is a candidate
    with torch.no_grad():
        aligner.blank.normal_()
        aligner.log_scale.fill_(0.5)
    ours = aligner(frames, lengths, targets, vocab)
    rows = torch.cat([aligner.blank[None], vocab])  # blank first, then ids shifted by one
    log_probs = (frames @ rows.T * aligner.log_scale.exp()).log_softmax(-1).transpose(0, 1)
    expected = F.ctc_loss(
        log_probs,
        torch.tensor([4, 4, 10, 2]),
        lengths,
        torch.tensor([3, 1]),
        reduction="none",
    )
    torch.testing.assert_close(ours, expected)


def test_gradients_reach_frames_blank_and_scale_but_not_the_vocabulary() -> None:
    vocab = torch.randn(50, 8)
    frames = torch.randn(1, 6, 8, requires_grad=True)
    aligner = CTCAligner(8, negatives=4)
    aligner(frames, torch.tensor([6]), [[7, 30]], vocab).sum().backward()
    assert frames.grad.abs().sum() > 0 and aligner.blank.grad.abs().sum() > 0
    assert aligner.log_scale.grad is not None and not vocab.requires_grad
