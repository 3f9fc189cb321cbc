from __future__ import annotations

import pytest
import torch
from transformers import WhisperFeatureExtractor

from speechllm.data.features import Featurizer, collate_features


def test_whisper_short_audio_fills_one_window_like_the_extractor(whisper: Featurizer) -> None:
    waveform = torch.randn(16000) * 0.1
    features, length = whisper(waveform)
    reference = whisper.extractor(waveform.numpy(), sampling_rate=16000, return_tensors="pt")
    assert features.shape == (80, 300) and length == 100
    torch.testing.assert_close(features, reference["input_features"][0])


def test_whisper_long_audio_keeps_every_frame_in_whole_windows(whisper: Featurizer) -> None:
    waveform = torch.randn(16000 * 7) * 0.1  # 7 s with 3 s windows: 3 windows
    features, length = whisper(waveform)
    assert features.shape == (80, 900) and length == 700
    last_real = features[:, 650:700]  # real audio in the third window is not padding
    assert last_real.std() > 0.05


def test_item_features_do_not_depend_on_the_batch(whisper: Featurizer) -> None:
    short, long = torch.randn(8000) * 0.1, torch.randn(16000 * 4) * 0.1
    alone = whisper(short)[0]
    audio, lengths = collate_features([whisper(short), whisper(long)])
    assert audio.shape == (2, 80, 600) and lengths.tolist() == [50, 400]
    torch.testing.assert_close(audio[0, :, :300], alone)
    assert (audio[0, :, 300:] == 0).all()


def test_waveform_featurizer_normalises_and_pads_with_zeros(wav2vec2: Featurizer) -> None:
    a, b = torch.randn(1600) * 3 + 1, torch.randn(800)
    (fa, la), (fb, lb) = wav2vec2(a), wav2vec2(b)
    assert fa.shape == (1600,) and la == 1600
    assert fa.mean().abs() < 1e-3 and (fa.std() - 1).abs() < 1e-2
    audio, lengths = collate_features([(fa, la), (fb, lb)])
    assert audio.shape == (2, 1600) and lengths.tolist() == [1600, 800]
    assert (audio[1, 800:] == 0).all()


def test_rejects_unsupported_extractors() -> None:
    with pytest.raises(ValueError, match="feature_size=1"):
        Featurizer(
            WhisperFeatureExtractor.__base__(
                feature_size=40, sampling_rate=16000, padding_value=0.0
            )
        )


@pytest.mark.parametrize("seconds", [0.013, 1.0, 2.94, 2.99, 3.0, 6.5])
def test_fast_whisper_path_equals_featurizing_the_padded_audio(whisper, seconds: float) -> None:
    waveform = torch.randn(round(seconds * 16000)) * 0.1
    features, _ = whisper(waveform)
    windows = -(-waveform.numel() // 48000)
    reference = whisper.extractor(
        waveform.numpy(),
        sampling_rate=16000,
        padding="max_length",
        max_length=windows * 48000,
        truncation=False,
        return_tensors="pt",
    )["input_features"][0]
    torch.testing.assert_close(features, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("seconds", [0.5, 1.005, 3.0, 7.3])
def test_whisper_real_frames_are_the_whole_window_features_cut(whisper, seconds: float) -> None:
    waveform = torch.randn(round(seconds * 16000)) * 0.1
    padded, valid = whisper(waveform)
    cut, cut_valid = Featurizer(whisper.extractor, whole_windows=False)(waveform)
    assert cut_valid == valid and cut.shape[-1] == valid + valid % 2
    torch.testing.assert_close(cut, padded[:, : cut.shape[-1]])


@pytest.mark.parametrize("real_length", [True, False])
def test_for_encoder_pads_whole_windows_only_for_an_encoder_that_reads_them(
    real_length: bool,
) -> None:
    from speechllm.models.tiny import tiny_whisper_encoder

    encoder = tiny_whisper_encoder(real_length=real_length)
    featurizer = Featurizer.for_encoder(encoder)
    assert featurizer.extractor is encoder.feature_extractor
    features, valid = featurizer(torch.randn(5000) * 0.1)  # 0.31 s: 31 frames of a 1 s window
    assert valid == 31 and features.shape[-1] == (32 if real_length else 100)
