import pytest
import torch

from speechllm.models.tiny import tiny_encoder
from speechllm.models.whisper_real_length import GROUP_SLACK, length_groups


@pytest.mark.parametrize("kind", ["whisper", "wavlm", "hubert", "wav2vec2"])
def test_encoder_is_frozen_and_stays_in_eval(kind: str) -> None:
    enc = tiny_encoder(kind)
    enc.train()
    assert not enc.model.training
    assert not any(p.requires_grad for p in enc.model.parameters())
    assert all(p.requires_grad for p in enc.layer_weights.parameters())


def _wave_inputs(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    audio = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        audio[i, :n] = torch.randn(n)
    return audio, torch.tensor(lengths)


@pytest.mark.parametrize("norm", ["layer", "group"])  # group: wav2vec2-base, hubert-base
@pytest.mark.parametrize("kind", ["wavlm", "hubert", "wav2vec2"])
def test_waveform_padding_does_not_leak(kind: str, norm: str) -> None:
    stable = norm == "layer"  # the base models pair GroupNorm with post-norm blocks
    enc = tiny_encoder(kind, feat_extract_norm=norm, do_stable_layer_norm=stable)
    enc.train()  # train mode must not enable dropout
    assert enc.masks_padding == (norm == "layer")
    audio, lengths = _wave_inputs([16000, 9000, 4000])
    frames, mask = enc(audio, lengths)
    for i, n in enumerate(lengths.tolist()):
        alone, alone_mask = enc(audio[i : i + 1, :n], lengths[i : i + 1])
        m = int(alone_mask.sum())
        assert int(mask[i].sum()) == m == int(enc.output_lengths(torch.tensor(n)))
        torch.testing.assert_close(frames[i, :m], alone[0], atol=1e-4, rtol=1e-4)
        assert frames[i, m:].abs().sum() == 0


def test_whisper_long_input_is_chunked_not_truncated() -> None:
    enc = tiny_encoder("whisper").eval()
    window = enc.window_frames
    assert window == 100
    feats = torch.randn(2, 80, 3 * window)
    lengths = torch.tensor([250, 60])  # 2.5 windows and 0.6 of one
    frames, mask = enc(feats, lengths)
    assert mask.sum(-1).tolist() == [125, 30]
    # each window is encoded on its own: the second window of item 0 equals encoding it alone
    alone, _ = enc(feats[:1, :, window : 2 * window], torch.tensor([window]))
    torch.testing.assert_close(frames[0, 50:100], alone[0])
    assert frames[1, 30:].abs().sum() == 0


def test_layer_weights_mix_all_hidden_states_and_last_only() -> None:
    enc = tiny_encoder("wavlm")
    assert enc.layer_weights.logits.numel() == enc.model.config.num_hidden_layers + 1
    audio, lengths = _wave_inputs([8000])
    mixed, _ = enc(audio, lengths)
    hidden = enc.model(audio, output_hidden_states=True).hidden_states
    torch.testing.assert_close(mixed[0], torch.stack(hidden).mean(0)[0], atol=1e-5, rtol=1e-5)
    last = tiny_encoder("wavlm", last_layer_only=True)
    assert list(last.layer_weights.parameters()) == []


@pytest.mark.parametrize("kind", ["whisper", "wavlm"])
def test_hidden_state_cache_reuses_encodings(kind: str) -> None:
    enc = tiny_encoder(kind, cache_hidden_states=True).eval()
    if kind == "whisper":
        audio, lengths = torch.randn(2, 80, 200), torch.tensor([200, 70])
    else:
        audio, lengths = _wave_inputs([12000, 5000])
    first, mask = enc(audio, lengths, keys=["a", "b"])
    assert set(enc._cache) == {"a", "b"}
    calls = []
    # Whisper on real lengths calls its layers directly, never the model's own forward
    first_layer = enc.model.conv1 if enc.is_windowed else enc.model
    first_layer.register_forward_hook(lambda *_: calls.append(1))
    # the same utterances in the other order; their audio is not even looked at
    again, again_mask = enc(torch.zeros_like(audio), lengths.flip(0), keys=["b", "a"])
    assert not calls
    n = int(mask.sum(-1).max())
    torch.testing.assert_close(again[0, :n], first[1, :n], atol=1e-2, rtol=1e-2)  # float16
    torch.testing.assert_close(again[1, :n], first[0, :n], atol=1e-2, rtol=1e-2)
    assert torch.equal(again_mask[:, :n], mask[:, :n].flip(0))
    enc(audio, lengths, keys=["a", "c"])  # one unseen key: encoded again, and cached
    assert calls and "c" in enc._cache


def test_whisper_real_length_equals_hugging_face_on_whole_windows() -> None:
    enc = tiny_encoder("whisper").eval()
    assert enc.real_length
    window = enc.window_frames
    feats = torch.randn(2, 80, 2 * window)
    ours = enc.hidden_states(feats, torch.tensor([2 * window, window]))
    windows = feats.reshape(2, 80, 2, window).permute(0, 2, 1, 3).flatten(0, 1)
    ref = enc.model(windows, output_hidden_states=True).hidden_states
    assert len(ours) == len(ref) == enc.model.config.num_hidden_layers + 1
    for mine, theirs in zip(ours, ref, strict=True):
        torch.testing.assert_close(mine[0], theirs[:2].flatten(0, 1))  # item 0: both windows
        torch.testing.assert_close(mine[1, :50], theirs[2])  # item 1: its one window
        assert mine[1, 50:].abs().sum() == 0


def test_whisper_real_length_item_is_encoded_as_if_alone() -> None:
    enc = tiny_encoder("whisper").eval()
    lengths = torch.tensor([250, 61, 37, 8])  # 2.5 windows, odd lengths rounded up to 2
    feats = torch.randn(len(lengths), 80, 260)
    frames, mask = enc(feats, lengths)
    assert mask.sum(-1).tolist() == enc.output_lengths(lengths).tolist() == [125, 31, 19, 4]
    assert frames.shape[1] == 125  # no item is padded to a whole window
    for i, n in enumerate(lengths.tolist()):
        alone, alone_mask = enc(feats[i : i + 1, :, : n + n % 2], lengths[i : i + 1])
        m = int(alone_mask.sum())
        torch.testing.assert_close(frames[i, :m], alone[0], atol=1e-5, rtol=1e-5)
        assert frames[i, m:].abs().sum() == 0


def test_whisper_real_length_differs_from_padded_windows_but_keeps_lengths() -> None:
    torch.manual_seed(0)
    real = tiny_encoder("whisper").eval()
    padded = tiny_encoder("whisper", real_length=False).eval()
    padded.load_state_dict(real.state_dict())
    feats, lengths = torch.randn(1, 80, 100), torch.tensor([40])
    a, mask_a = real(feats, lengths)
    b, mask_b = padded(feats, lengths)
    assert mask_a.sum() == mask_b.sum() == 20
    assert not torch.allclose(a[0, :20], b[0, :20])  # attention no longer sees the padding


def test_length_groups_bound_padding() -> None:
    lengths = [3000, 500, 3000, 480, 1100, 510]
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        longest = max(lengths[i] for i in group)
        assert longest * len(group) <= GROUP_SLACK * sum(lengths[i] for i in group)
    assert [sorted(g) for g in groups] == [[0, 2], [4], [1, 3, 5]]
