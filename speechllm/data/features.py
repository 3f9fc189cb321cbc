"""Turn a waveform into the encoder's input with the encoder's own Hugging Face extractor.

Two input kinds (see the batch contract in docs/architecture.md)::

    waveform encoders (wav2vec2, WavLM, HuBERT)   (samples,)          valid = samples
    Whisper, whole_windows=True                    (n_mels, W * win)   valid = samples // hop
                                                   W = whole windows covering the audio
    Whisper, whole_windows=False                   (n_mels, valid      valid = samples // hop
                                                    rounded up to 2)
    no audio (a text-only item, either kind)       (n_mels, 0) / (0,)  valid = 0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from transformers import AutoFeatureExtractor, SequenceFeatureExtractor, WhisperFeatureExtractor

WHISPER_FRAME_MULTIPLE = 2
"""Whisper's convolutions (strides 1 and 2) turn two mel frames into one encoder frame; an
encoder on real lengths rounds each item up to this, so the frame after an odd length must be
the item's own (silence), not a neighbour's padding."""


class FeaturizedEncoder(Protocol):
    """What :meth:`Featurizer.for_encoder` reads of an encoder (``models.AudioEncoder`` has
    both); the data side names no model class."""

    @property
    def feature_extractor(self) -> SequenceFeatureExtractor: ...

    @property
    def real_length(self) -> bool: ...


class Featurizer:
    """Computes one item's encoder input independently of the other items in its batch.

    Whisper audio is never truncated: long audio keeps every frame (the encoder processes it
    window by window). With ``whole_windows`` it is padded with silence to whole 30 s windows,
    as Hugging Face's ``WhisperEncoder`` requires; without, it stops after its real frames
    (rounded up to :data:`WHISPER_FRAME_MULTIPLE`), for an encoder with ``real_length`` on, so
    a 5 s clip is not collated, copied and moved as 30 s.

    Args:
        extractor: A ``WhisperFeatureExtractor`` or a waveform extractor with ``feature_size=1``
            (``Wav2Vec2FeatureExtractor``).
        whole_windows: Pad Whisper log-mel to whole windows (what an encoder with
            ``real_length`` off needs; one with it on reads only the real frames of either).
    """

    def __init__(self, extractor: SequenceFeatureExtractor, whole_windows: bool = True) -> None:
        self.is_log_mel = isinstance(extractor, WhisperFeatureExtractor)
        if not self.is_log_mel and extractor.feature_size != 1:
            raise ValueError(
                f"unsupported feature extractor {type(extractor).__name__}: expected Whisper "
                "log-mel or a waveform extractor with feature_size=1"
            )
        self.extractor = extractor
        self.whole_windows = whole_windows
        self.sampling_rate: int = extractor.sampling_rate
        self.frame_rate: float = (
            extractor.sampling_rate / extractor.hop_length
            if self.is_log_mel
            else self.sampling_rate
        )
        """Units of ``valid_length`` per second of audio."""

    @classmethod
    def for_encoder(cls, encoder: FeaturizedEncoder) -> Featurizer:
        """The input ``encoder`` reads: its own extractor, Whisper log-mel padded to whole
        windows unless the encoder runs on real lengths."""
        return cls(encoder.feature_extractor, whole_windows=not encoder.real_length)

    @classmethod
    def from_pretrained(cls, name_or_path: str, whole_windows: bool = True) -> Featurizer:
        """Wrap the feature extractor saved with an encoder checkpoint (local or on the Hub)."""
        return cls(AutoFeatureExtractor.from_pretrained(name_or_path), whole_windows)

    def __call__(self, waveform: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Featurize one item.

        Args:
            waveform: 1-D float tensor at ``self.sampling_rate``.

        Returns:
            ``(features, valid_length)``: ``(samples,)`` and ``samples`` for waveform encoders;
            ``(n_mels, frames)`` (padded to whole windows, or to the real frames rounded up to
            :data:`WHISPER_FRAME_MULTIPLE`) and the number of real frames for Whisper.
        """
        if waveform.dim() != 1 or waveform.numel() == 0:
            raise ValueError(
                f"expected a non-empty 1-D waveform, got shape {tuple(waveform.shape)}"
            )
        samples = waveform.numel()
        if self.is_log_mel:
            valid = max(1, samples // self.extractor.hop_length)
            features = self._log_mel(waveform)
            if not self.whole_windows:
                multiple = WHISPER_FRAME_MULTIPLE
                features = features[:, : -(-valid // multiple) * multiple]
            return features, valid
        out = self.extractor(
            waveform.numpy(), sampling_rate=self.sampling_rate, return_tensors="pt"
        )
        return out["input_values"][0], samples

    def empty(self) -> tuple[torch.Tensor, int]:
        """The input of an item without audio (a text-only item): zero width and valid length
        0, so :func:`collate_features` pads its row with zeros like any shorter item, and a
        batch of such items alone is ``(B, n_mels, 0)`` (Whisper) or ``(B, 0)`` (waveform)."""
        shape = (self.extractor.feature_size, 0) if self.is_log_mel else (0,)
        return torch.zeros(shape), 0

    def _log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Whisper log-mel over whole windows.

        The STFT runs on the audio plus two FFT lengths of zeros only (unless that nearly fills
        the windows); later frames are all silence, so they copy the last computed one. Same
        values as featurizing the fully padded audio (tested), several times faster for short
        items. Dithered extractors add noise to the padding too, so they take the slow path.
        """
        extractor = self.extractor
        samples = waveform.numel()
        windows = math.ceil(samples / extractor.n_samples)
        if extractor.dither:
            out = extractor(
                waveform.numpy(),
                sampling_rate=self.sampling_rate,
                padding="max_length",
                max_length=windows * extractor.n_samples,
                truncation=False,
                return_tensors="pt",
            )
            return out["input_features"][0]
        frames = windows * extractor.nb_max_frames
        padded = windows * extractor.n_samples
        length = samples + 2 * extractor.n_fft
        if length + extractor.n_fft > padded:  # the STFT's end reflection would see real audio
            length = padded
        audio = np.zeros(length, dtype=np.float32)
        audio[:samples] = waveform.numpy()
        head = torch.from_numpy(extractor._torch_extract_fbank_features(audio))[:, :frames]
        silence = head[:, -1:].expand(-1, frames - head.shape[-1])
        return torch.cat([head, silence], dim=-1)


def collate_features(
    items: Sequence[tuple[torch.Tensor, int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack featurized items, zero-padding the last dimension to the longest.

    Args:
        items: ``(features, valid_length)`` pairs from one :class:`Featurizer`.

    Returns:
        ``audio`` (B, ..., max_len) and ``audio_lengths`` (B,) long.
    """
    if not items:
        raise ValueError("cannot collate an empty list of items")
    longest = max(features.shape[-1] for features, _ in items)
    audio = items[0][0].new_zeros((len(items), *items[0][0].shape[:-1], longest))
    for row, (features, _) in enumerate(items):
        audio[row, ..., : features.shape[-1]] = features
    return audio, torch.tensor([length for _, length in items], dtype=torch.long)
