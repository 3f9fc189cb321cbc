import pytest
import torch

from speechllm.models.downsampler import ConvDownsampler


@pytest.mark.parametrize("strides", [[2, 2], [3], [2, 1, 2]])
@pytest.mark.parametrize("length", [1, 2, 7, 8, 9, 16, 33])
def test_output_length_matches_conv_arithmetic(strides: list[int], length: int) -> None:
    down = ConvDownsampler(8, 12, strides=strides)
    frames = torch.randn(1, length, 8)
    out, mask = down(frames, torch.ones(1, length, dtype=torch.bool))
    assert out.shape == (1, int(down.output_lengths(torch.tensor([length]))), 12)
    assert mask.all()


def test_padding_does_not_change_real_outputs() -> None:
    down = ConvDownsampler(8, 12, strides=[2, 2]).eval()
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


def test_rejects_even_kernel_and_empty_strides() -> None:
    with pytest.raises(ValueError, match="kernel_size"):
        ConvDownsampler(4, 4, kernel_size=4)
    with pytest.raises(ValueError, match="strides"):
        ConvDownsampler(4, 4, strides=[])
