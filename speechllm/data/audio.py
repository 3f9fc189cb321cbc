"""Decode audio to the encoder's rate, refusing audio that would silently poison training."""

from __future__ import annotations

import io
import math
import os
import stat
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

MAX_SECONDS = 600.0
"""Longest audio decoded when the caller gives no cap: a 335 kB FLAC of silence holds 30 min
(3 GB as 48 kHz stereo float32), so a file's size says nothing about what it decodes to."""
MIN_SAMPLE_RATE = 2_000
"""Lowest rate accepted: a header saying 1 Hz would be upsampled 16,000-fold to the encoder's."""
MAX_SAMPLE_RATE = 384_000
"""Highest rate accepted (the highest in use); it bounds the samples ``MAX_SECONDS`` holds."""
MAX_CHANNELS = 64
"""Most channels accepted (they are averaged block by block, so memory does not scale)."""
DECODER_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OverflowError, EOFError)
"""What libsndfile and soundfile raise on a file they cannot make sense of."""
READ_BLOCK_FRAMES = 1 << 16
"""Frames decoded at a time: only the mono mix of the blocks is kept."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header claims: refused before decoding if absurd (see :func:`audio_info`)."""

    frames: int
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def audio_info(path: str) -> AudioInfo:
    """The header of an audio file, checked as :func:`load_audio` checks it, without decoding.

    Raises:
        AudioError: The file is missing, not a regular file (a FIFO or device would block or
            never end), unreadable, or its rate or channel count is outside the sane range.
    """
    _regular_file(path)
    try:
        with sf.SoundFile(path) as f:
            return _checked_header(f, path)
    except AudioError:
        raise
    except DECODER_ERRORS as error:
        raise _unreadable(error, path) from None


def load_audio(
    path: str,
    sample_rate: int | None,
    offset: float = 0.0,
    duration: float | None = None,
    max_seconds: float | None = MAX_SECONDS,
) -> torch.Tensor:
    """Read a (segment of a) WAV/FLAC/OGG/MP3 file as mono float32 at ``sample_rate``.

    The header is checked before anything is decoded (rate, channels, and the length against
    ``max_seconds``), and at most ``max_seconds * rate + 1`` frames are read whatever it says.

    Args:
        path: Audio file.
        sample_rate: Rate to resample to (the encoder's); ``None`` keeps the file's rate.
        offset: Segment start in seconds.
        duration: Segment length in seconds; ``None`` reads to the end. Reading less than this
            (beyond ``TRUNCATION_TOLERANCE_S``) raises a ``truncated`` error.
        max_seconds: Longest audio accepted (``too_long`` beyond it); ``None``: no cap beyond
            ``duration`` (training, whose manifest durations are already capped).

    Returns:
        A 1-D float32 tensor.

    Raises:
        AudioError: The file is missing, not a regular file, unreadable, too long, truncated,
            empty, holds NaN/inf samples, or has an absurd rate or channel count.
    """
    _regular_file(path)
    return _decode(path, path, sample_rate, offset, duration, max_seconds)


def decode_audio(
    data: bytes,
    sample_rate: int | None,
    name: str = "audio",
    max_seconds: float | None = MAX_SECONDS,
) -> torch.Tensor:
    """:func:`load_audio` on an encoded file held in memory (an upload, a base64 payload).

    Args:
        data: The bytes of a WAV/FLAC/OGG/MP3 file (the container is sniffed, not trusted).
        sample_rate: Rate to resample to; ``None`` keeps the file's rate.
        name: What to call the audio in error messages.
        max_seconds: Longest audio accepted, checked on the header before decoding.

    Raises:
        AudioError: As :func:`load_audio`.
    """
    return _decode(io.BytesIO(data), name, sample_rate, max_seconds=max_seconds)


def prepare_waveform(
    waveform: torch.Tensor,
    rate: int,
    sample_rate: int | None,
    name: str = "waveform",
    max_seconds: float | None = MAX_SECONDS,
) -> torch.Tensor:
    """A caller's waveform through the checks a decoded file gets: rate, length, NaN/inf,
    then the guarded :func:`resample`, so no entry point builds an unbounded sinc kernel.

    Args:
        waveform: ``(samples,)`` or ``(channels, samples)``; channels are averaged.
        rate: Its sampling rate.
        sample_rate: Rate to resample to; ``None`` keeps ``rate``.
        name: What to call the audio in error messages.
        max_seconds: Longest audio accepted; ``None``: no cap.
    """
    if waveform.dim() == 2:
        _check_format(rate, waveform.shape[0], name)
        waveform = waveform.float().mean(0)
    else:
        _check_format(rate, 1, name)
    if waveform.dim() != 1:
        raise AudioError(
            f"{name}: expected (samples,) or (channels, samples), got {tuple(waveform.shape)}",
            reason="bad_shape",
        )
    waveform = waveform.float()
    if waveform.numel() == 0:
        raise AudioError(f"no samples in {name}", reason="empty_audio")
    _check_length(waveform.numel() / rate, max_seconds, name)
    if not bool(torch.isfinite(waveform).all()):
        raise AudioError(f"NaN or inf samples in {name}", reason="nan_audio")
    if sample_rate is not None and rate != sample_rate:
        waveform = resample(waveform, rate, sample_rate)
    return waveform


def _regular_file(path: str) -> None:
    """Refuse what is not a regular file before opening it: a FIFO's open blocks until a
    writer comes, a device (``/dev/zero``) never ends."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AudioError(f"audio file not found: {path}", reason="missing_file") from None
    except OSError as error:
        raise AudioError(f"cannot stat audio {path}: {error}", reason="unreadable") from None
    if not stat.S_ISREG(mode):
        raise AudioError(f"not a regular file: {path}", reason="not_a_file")


def _check_format(rate: int, channels: int, name: str) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name}: sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz",
            reason="bad_sample_rate",
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(
            f"{name}: {channels} channels; at most {MAX_CHANNELS} are accepted",
            reason="bad_channels",
        )


def _check_length(seconds: float, max_seconds: float | None, name: str) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(
            f"{name} is {seconds:.6g} s long; at most {max_seconds:g} s is accepted",
            reason="too_long",
        )


def _checked_header(f: sf.SoundFile, name: str) -> AudioInfo:
    info = AudioInfo(int(f.frames), int(f.samplerate), int(f.channels))
    _check_format(info.sample_rate, info.channels, name)
    return info


def _unreadable(error: Exception, name: str) -> AudioError:
    detail = getattr(error, "error_string", error)  # libsndfile's words, not the object's repr
    return AudioError(f"unreadable audio {name}: {detail}", reason="unreadable")


def _decode(
    source: str | BinaryIO,
    name: str,
    sample_rate: int | None,
    offset: float = 0.0,
    duration: float | None = None,
    max_seconds: float | None = MAX_SECONDS,
) -> torch.Tensor:
    """Check the header, read a bounded span, check and resample: the one decoder behind
    :func:`load_audio` and :func:`decode_audio`.

    The span is settled in seconds before any frame count is computed, so absurd numbers
    (``duration: 1e308``) are refused instead of overflowing; frames are read block by block
    and mixed to mono as they come, so neither a lying header nor many channels can allocate
    more than the mono span.
    """
    if not (math.isfinite(offset) and offset >= 0):
        raise AudioError(f"{name}: offset must be finite and >= 0, got {offset}", reason="bad_span")
    if duration is not None:
        if not (math.isfinite(duration) and duration >= 0):
            raise AudioError(
                f"{name}: duration must be finite and >= 0, got {duration}", reason="bad_span"
            )
        _check_length(duration, max_seconds, f"the segment of {name}")
    try:
        with sf.SoundFile(source) as f:
            info = _checked_header(f, name)
            rate = info.sample_rate
            start = info.frames if offset * rate >= info.frames else round(offset * rate)
            if duration is None:
                _check_length((info.frames - start) / rate, max_seconds, name)
                want = info.frames - start
                if max_seconds is not None:  # the header may understate what follows
                    want = math.floor(max_seconds * rate) + 1
            else:
                want = round(min(duration * rate, 2.0**62))  # read to the end if it is shorter
            if start:
                f.seek(start)
            data = _read_mono(f, want)
    except AudioError:
        raise
    except DECODER_ERRORS as error:
        raise _unreadable(error, name) from None
    except MemoryError:
        raise AudioError(f"out of memory decoding {name}", reason="unreadable") from None
    if data.shape[0] == 0:
        raise AudioError(f"no samples in {name} (offset {offset} s)", reason="empty_audio")
    if duration is not None and data.shape[0] / rate < duration - TRUNCATION_TOLERANCE_S:
        raise AudioError(
            f"truncated audio {name}: read {data.shape[0] / rate:.2f} s of {duration:.2f} s",
            reason="truncated",
        )
    return prepare_waveform(torch.from_numpy(data), rate, sample_rate, name, max_seconds)


def _read_mono(f: sf.SoundFile, frames: int) -> np.ndarray:
    """Up to ``frames`` frames from ``f``'s position, averaged over channels block by block."""
    blocks = []
    left = frames
    while left > 0:
        block = f.read(min(left, READ_BLOCK_FRAMES), dtype="float32", always_2d=True)
        if not len(block):
            break
        blocks.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
        left -= len(block)
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


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
