"""Fixtures writing tiny audio files and manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from speechllm.data.features import Featurizer


def tone(seconds: float, rate: int = 16000, freq: float = 440.0) -> np.ndarray:
    """A quiet sine, so resampling and downmixing can be checked against a known signal."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write_audio(path: Path, seconds: float = 0.5, rate: int = 16000, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, rate), rate, **kwargs)
    return path


def _write_lines(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [x if isinstance(x, str) else json.dumps(x) for x in lines]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def _line(utt: str, audio: str, task: str = "asr", target: str = "hello world", **extra: Any):
    return {"id": utt, "audio": audio, "task": task, "target": target, **extra}


@pytest.fixture
def write_audio():
    """``write_audio(path, seconds=0.5, rate=16000, **soundfile_kwargs) -> path`` (a sine)."""
    return _write_audio


@pytest.fixture
def write_lines():
    """``write_lines(path, lines) -> path``: JSONL from dicts, strings written verbatim."""
    return _write_lines


@pytest.fixture
def line():
    """``line(id, audio, task="asr", target="hello world", **fields) -> dict``."""
    return _line


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
