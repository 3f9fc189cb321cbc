"""Featurizers for the data tests (the audio and manifest writers are in ``tests/conftest.py``)."""

from __future__ import annotations

import pytest
from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from speechllm.data.features import Featurizer


@pytest.fixture
def whisper() -> Featurizer:
    """A Whisper featurizer with 3 s windows (300 frames) instead of 30 s."""
    return Featurizer(WhisperFeatureExtractor(feature_size=80, chunk_length=3))


@pytest.fixture
def wav2vec2() -> Featurizer:
    return Featurizer(
        Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        )
    )
