from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechllm.data.audio import SpecAugment, decode_audio, load_audio
from speechllm.data.errors import AudioError


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_resamples_to_target_rate_keeping_the_signal(
    tmp_path: Path, write_audio, rate: int
) -> None:
    path = write_audio(tmp_path / "a.wav", seconds=0.5, rate=rate)
    waveform = load_audio(str(path), 16000)
    assert waveform.dtype == torch.float32 and waveform.shape == (8000,)
    spectrum = torch.fft.rfft(waveform).abs()
    assert int(spectrum.argmax()) == pytest.approx(440 * 0.5, abs=1)  # 440 Hz tone survives


@pytest.mark.parametrize(
    ("name", "subtype"),
    [("a24.wav", "PCM_24"), ("af.wav", "FLOAT"), ("a.flac", None), ("a.ogg", None)],
)
def test_decodes_formats_and_sample_types(tmp_path: Path, write_audio, name: str, subtype) -> None:
    path = write_audio(tmp_path / name, subtype=subtype)
    reference, _ = sf.read(str(write_audio(tmp_path / "ref.wav", subtype="FLOAT")), dtype="float32")
    waveform = load_audio(str(path), 16000)
    tolerance = 0.05 if name.endswith(".ogg") else 1e-4  # Vorbis is lossy
    torch.testing.assert_close(waveform, torch.from_numpy(reference), atol=tolerance, rtol=0)


def test_stereo_is_downmixed_to_mono(tmp_path: Path) -> None:
    left, right = np.full(1600, 0.5, np.float32), np.full(1600, -0.1, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    waveform = load_audio(str(tmp_path / "s.wav"), 16000)
    torch.testing.assert_close(waveform, torch.full((1600,), 0.2))


def test_reads_offset_duration_segment(tmp_path: Path) -> None:
    sf.write(tmp_path / "r.wav", np.arange(16000, dtype=np.float32) / 16000, 16000, subtype="FLOAT")
    waveform = load_audio(str(tmp_path / "r.wav"), 16000, offset=0.25, duration=0.5)
    assert waveform.shape == (8000,) and waveform[0] == pytest.approx(0.25)


def _truncated(path: Path, write_audio) -> Path:
    data = write_audio(path, seconds=1.0).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "duration", "reason"),
    [
        (lambda p, w: p / "missing.wav", None, "missing_file"),
        (
            lambda p, w: (p / "junk.wav").write_bytes(b"not audio at all") and p / "junk.wav",
            None,
            "unreadable",
        ),
        (lambda p, w: _truncated(p / "cut.wav", w), 1.0, "truncated"),
        (lambda p, w: _truncated(p / "cut.flac", w), 1.0, "unreadable"),
        (lambda p, w: w(p / "empty.wav", seconds=0.0), None, "empty_audio"),
    ],
)
def test_bad_audio_raises_with_reason(tmp_path, write_audio, make, duration, reason: str) -> None:
    path = make(tmp_path, write_audio)
    with pytest.raises(AudioError) as caught:
        load_audio(str(path), 16000, duration=duration)
    assert caught.value.reason == reason and str(path) in str(caught.value)
    located = caught.value.at("train.jsonl", 7)
    assert str(located).startswith("train.jsonl:7: ") and located.reason == reason


@pytest.mark.parametrize("name", ["a.wav", "a.flac", "a.mp3", "a.ogg"])
def test_in_memory_bytes_decode_as_the_file_does(tmp_path: Path, write_audio, name: str) -> None:
    path = write_audio(tmp_path / name, rate=8000)
    from_bytes = decode_audio(path.read_bytes(), 16000)
    assert torch.equal(from_bytes, load_audio(str(path), 16000)) and from_bytes.shape == (8000,)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"not audio at all", "unreadable"), (None, "empty_audio")],
)
def test_bad_bytes_raise_with_reason_and_name(tmp_path: Path, write_audio, data, reason) -> None:
    data = data if data is not None else write_audio(tmp_path / "e.wav", seconds=0.0).read_bytes()
    with pytest.raises(AudioError, match="upload 3") as caught:
        decode_audio(data, 16000, name="upload 3")
    assert caught.value.reason == reason


def test_nan_samples_are_rejected(tmp_path: Path) -> None:
    data = np.zeros(1600, np.float32)
    data[100] = np.nan
    sf.write(tmp_path / "nan.wav", data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as caught:
        load_audio(str(tmp_path / "nan.wav"), 16000)
    assert caught.value.reason == "nan_audio"


def test_spec_augment_masks_only_real_frames_and_is_seeded() -> None:
    features = torch.randn(80, 500)
    augment = SpecAugment(freq_masks=2, freq_width=20, time_masks=2, time_width=50)
    out = augment(features, valid_length=300, seed=3)
    assert torch.equal(out[:, 300:], features[:, 300:])
    assert (out[:, :300] != features[:, :300]).any()
    assert torch.equal(out, augment(features, valid_length=300, seed=3))
    assert not torch.equal(out, augment(features, valid_length=300, seed=4))
