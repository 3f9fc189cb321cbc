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


def _aligner_on(vocab: torch.Tensor) -> CTCAligner:
    """An aligner so sharp that each frame's posterior is one-hot on its nearest row."""
    aligner = CTCAligner(vocab.shape[1])
    with torch.no_grad():
        aligner.blank.copy_(torch.eye(vocab.shape[1])[0] * 3)
        aligner.log_scale.fill_(4.0)
    return aligner


def test_compress_follows_the_greedy_path_dropping_blanks_and_merging_repeats() -> None:
    vocab = torch.eye(6)[1:] * 3  # ids 0..4 on axes 1..5; the blank on axis 0
    blank = torch.eye(6)[0] * 3
    path = [blank, vocab[2], vocab[2], blank, vocab[4], vocab[4], blank, vocab[2]]
    frames = torch.stack(path)[None]
    aligner = _aligner_on(vocab)
    out, lengths = aligner.compress(frames, torch.tensor([8]), vocab)
    assert lengths.tolist() == [3]
    torch.testing.assert_close(out[0], vocab[[2, 4, 2]], atol=1e-4, rtol=0)


def test_compress_keeps_one_position_for_an_all_blank_item_and_ignores_padding() -> None:
    vocab = torch.eye(6)[1:] * 3
    blank = torch.eye(6)[0] * 3
    aligner = _aligner_on(vocab)
    quiet = torch.stack([blank, blank * 0.9 + vocab[1] * 0.2, blank])
    speech = torch.stack([vocab[0], blank, vocab[3]])
    alone, n = aligner.compress(quiet[None], torch.tensor([3]), vocab)
    assert n.tolist() == [1]  # the least blank frame, as its posterior-weighted tokens
    assert alone[0, 0].argmax() == 2  # vocab id 1 lives on axis 2
    padded = torch.cat([speech[:2], torch.full((1, 6), 9.0)])  # frame 3 is padding
    batch, lengths = aligner.compress(torch.stack([padded, speech]), torch.tensor([2, 3]), vocab)
    assert lengths.tolist() == [1, 2]
    torch.testing.assert_close(batch[0, :1], vocab[[0]], atol=1e-4, rtol=0)
    torch.testing.assert_close(batch[1, :2], vocab[[0, 3]], atol=1e-4, rtol=0)


def test_compress_passes_gradients_to_the_frames_through_the_posteriors() -> None:
    torch.manual_seed(0)
    vocab = torch.randn(40, 8)
    frames = torch.randn(2, 9, 8, requires_grad=True)
    aligner = CTCAligner(8)
    out, lengths = aligner.compress(frames, torch.tensor([9, 6]), vocab)
    out.square().sum().backward()
    assert frames.grad[0].abs().sum() > 0 and frames.grad[1, :6].abs().sum() > 0
    assert frames.grad[1, 6:].abs().sum() == 0 and aligner.log_scale.grad is not None


def test_greedy_ids_merge_repeats_keep_a_token_repeated_across_a_blank_and_stop_at_length() -> None:
    vocab = torch.eye(6)[1:] * 3
    blank = torch.eye(6)[0] * 3
    path = [vocab[2], vocab[2], blank, vocab[2], vocab[4], blank, vocab[1], vocab[3]]
    frames = torch.stack([torch.stack(path), torch.stack(path[::-1])])
    ids = _aligner_on(vocab).greedy_ids(frames, torch.tensor([7, 8]), vocab)
    assert ids == [[2, 2, 4, 1], [3, 1, 4, 2, 2]]
    # the path the LLM reads (compress) holds as many positions as the transcript has ids
    _, lengths = _aligner_on(vocab).compress(frames, torch.tensor([7, 8]), vocab)
    assert lengths.tolist() == [4, 5]
