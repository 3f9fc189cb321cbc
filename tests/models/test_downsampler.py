import pytest
import torch

from speechllm.models.downsampler import ConvDownsampler


@pytest.mark.parametrize("summary", [0, 2])
@pytest.mark.parametrize("strides", [[2, 2], [3], [2, 1, 2]])
@pytest.mark.parametrize("length", [1, 2, 7, 8, 9, 16, 33])
def test_output_length_matches_conv_arithmetic(
    strides: list[int], length: int, summary: int
) -> None:
    down = ConvDownsampler(8, 12, strides=strides, summary_tokens=summary)
    frames = torch.randn(1, length, 8)
    out, mask = down(frames, torch.ones(1, length, dtype=torch.bool))
    assert out.shape == (1, int(down.output_lengths(torch.tensor([length]))), 12)
    assert mask.all()


@pytest.mark.parametrize("summary", [0, 1, 3])
def test_padding_does_not_change_real_outputs(summary: int) -> None:
    down = ConvDownsampler(8, 12, strides=[2, 2], summary_tokens=summary).eval()
    lengths = [13, 8, 5, 2]
    items = [torch.randn(n, 8) for n in lengths]
    batch = torch.full((4, 13, 8), 7.0)  # garbage in the padding must not leak
    mask = torch.zeros(4, 13, dtype=torch.bool)
    for i, x in enumerate(items):
        batch[i, : len(x)], mask[i, : len(x)] = x, True
    out, out_mask = down(batch, mask)
    for i, x in enumerate(items):
        alone, alone_mask = down(x[None], torch.ones(1, len(x), dtype=torch.bool))
        n = int(alone_mask.sum())
        assert int(out_mask[i].sum()) == n
        torch.testing.assert_close(out[i, :n], alone[0])
        assert out[i, n:].abs().sum() == 0


def test_summary_tokens_follow_the_frames_and_carry_the_utterance_mean() -> None:
    down = ConvDownsampler(8, 12, strides=[2, 2], summary_tokens=2, output_scale=0.05).eval()
    frames = torch.randn(1, 16, 8)
    out, mask = down(frames, torch.ones(1, 16, dtype=torch.bool))
    plain = ConvDownsampler(8, 12, strides=[2, 2])
    n_frames = int(plain.output_lengths(torch.tensor([16])))
    assert out.shape[1] == n_frames + 2 and mask.all()
    rms = out[0, n_frames:].pow(2).mean().sqrt().item()
    assert rms == pytest.approx(0.05, rel=1e-3)  # starts at the output scale, like the frames
    # the summary sees every frame: changing only the first frame changes it
    moved = frames.clone()
    moved[0, 0] += 5.0
    out2, _ = down(moved, torch.ones(1, 16, dtype=torch.bool))
    assert not torch.allclose(out[0, n_frames:], out2[0, n_frames:])
    # shuffling the frames changes the frame embeddings but not the summary (a mean)
    out3, _ = down(frames[:, torch.randperm(16)], torch.ones(1, 16, dtype=torch.bool))
    torch.testing.assert_close(out[0, n_frames:], out3[0, n_frames:])


def test_rejects_even_kernel_and_empty_strides() -> None:
    with pytest.raises(ValueError, match="kernel_size"):
        ConvDownsampler(4, 4, kernel_size=4)
    with pytest.raises(ValueError, match="strides"):
        ConvDownsampler(4, 4, strides=[])
    with pytest.raises(ValueError, match="summary_tokens"):
        ConvDownsampler(4, 4, summary_tokens=-1)
