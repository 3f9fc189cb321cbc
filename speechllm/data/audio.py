"""Decode audio to the encoder's rate, refusing audio that would silently poison training."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio.transforms as T

from speechllm.data.errors import AudioError

TRUNCATION_TOLERANCE_S = 0.1
"""Audio shorter than the manifest's duration by more than this is reported as truncated (the
WAV reader silently stops at the end of a cut-off file)."""


def load_audio(
    path: str, sample_rate: int | None, offset: float = 0.0, duration: float | None = None
) -> torch.Tensor:
    """Read a (segment of a) WAV/FLAC/OGG/MP3 file as mono float32 at ``sample_rate``.

    Args:
        path: Audio file.
        sample_rate: Rate to resample to (the encoder's); ``None`` keeps the file's rate.
        offset: Segment start in seconds.
        duration: Segment length in seconds; ``None`` reads to the end. Reading less than this
            (beyond ``TRUNCATION_TOLERANCE_S``) raises a ``truncated`` error.

    Returns:
        A 1-D float32 tensor.

    Raises:
        AudioError: The file is missing, unreadable, truncated, empty or holds NaN/inf samples.
    """
    if not os.path.exists(path):
        raise AudioError(f"audio file not found: {path}", reason="missing_file")
    return _decode(path, path, sample_rate, offset, duration)


def decode_audio(data: bytes, sample_rate: int | None, name: str = "audio") -> torch.Tensor:
    """:func:`load_audio` on an encoded file held in memory (an upload, a base64 payload).

    Args:
        data: The bytes of a WAV/FLAC/OGG/MP3 file (the container is sniffed, not trusted).
        sample_rate: Rate to resample to; ``None`` keeps the file's rate.
        name: What to call the audio in error messages.

    Raises:
        AudioError: The bytes are not decodable, hold no samples or NaN/inf samples.
    """
    return _decode(io.BytesIO(data), name, sample_rate)


def _decode(
    source: str | BinaryIO,
    name: str,
    sample_rate: int | None,
    offset: float = 0.0,
    duration: float | None = None,
) -> torch.Tensor:
    """Read, check and resample: the one decoder behind :func:`load_audio` and
    :func:`decode_audio`."""
    try:
        with sf.SoundFile(source) as f:
            rate = f.samplerate
            start = round(offset * rate)
            if start:
                f.seek(min(start, f.frames))
            frames = -1 if duration is None else round(duration * rate)
            data = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        detail = getattr(error, "error_string", error)  # libsndfile's words, not the object's repr
        raise AudioError(f"unreadable audio {name}: {detail}", reason="unreadable") from None
    if data.shape[0] == 0:
        raise AudioError(f"no samples in {name} (offset {offset} s)", reason="empty_audio")
    if duration is not None and data.shape[0] / rate < duration - TRUNCATION_TOLERANCE_S:
        raise AudioError(
            f"truncated audio {name}: read {data.shape[0] / rate:.2f} s of {duration:.2f} s",
            reason="truncated",
        )
    if not np.isfinite(data).all():
        raise AudioError(f"NaN or inf samples in {name}", reason="nan_audio")
    waveform = torch.from_numpy(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0])
    if sample_rate is not None and rate != sample_rate:
        waveform = resample(waveform, rate, sample_rate)
    return waveform


MAX_KERNEL = 4_000_000
"""Largest sinc kernel (elements) built for one rate pair; odd rates go via a near one."""


def resample(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Windowed-sinc resampling whose kernel stays small whatever the file's rate.

    The kernel has about ``new/g x orig/g`` elements (``g = gcd(orig, new)``): 383,999 Hz to
    16 kHz would need 24 GB. Such a rate is first interpolated linearly to the nearest multiple
    of 100 Hz (a pitch change of at most 50 Hz over the file's rate, below 0.05 % there).
    """
    g = math.gcd(orig, new)
    if (orig // g) * (new // g) > MAX_KERNEL:
        near = max(100, round(orig / 100) * 100)
        size = max(1, round(len(waveform) * near / orig))
        waveform = F.interpolate(waveform[None, None], size=size, mode="linear")[0, 0]
        orig = near
    return _resampler(orig, new)(waveform) if orig != new else waveform


@lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> T.Resample:
    """Cached so the sinc kernel is built once per rate pair, not once per file."""
    return T.Resample(orig, new)


@dataclass(frozen=True)
class SpecAugment:
    """SpecAugment (Park et al., 2019) for log-mel features, applied to training items only.

    Masks cover only the item's real frames so padding stays recognisable, and are filled with
    the item's mean so a mask looks like flat noise rather than an impossible value.
    """

    freq_masks: int = 2
    """Number of frequency masks."""
    freq_width: int = 27
    """Maximum width of a frequency mask in mel bins."""
    time_masks: int = 2
    """Number of time masks."""
    time_width: int = 40
    """Maximum width of a time mask in frames (40 frames = 0.4 s at Whisper's 10 ms hop)."""

    def __post_init__(self) -> None:
        if min(self.freq_masks, self.freq_width, self.time_masks, self.time_width) < 0:
            raise ValueError("SpecAugment mask counts and widths must be >= 0")

    def __call__(self, features: torch.Tensor, valid_length: int, seed: int) -> torch.Tensor:
        """Mask a copy of ``features`` (n_mels, frames) within its first ``valid_length`` frames.

        Args:
            features: Log-mel features.
            valid_length: Number of real (unpadded) frames.
            seed: Seeds the masks, so a run is reproducible whatever worker loads the item.
        """
        out = features.clone()
        real = out[:, :valid_length]
        fill = float(real.mean())
        n_mels, frames = real.shape
        masks = [T.FrequencyMasking(min(self.freq_width, n_mels))] * self.freq_masks + [
            T.TimeMasking(min(self.time_width, frames))
        ] * self.time_masks
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for mask in masks:
                real.copy_(mask(real, mask_value=fill))
        return out
