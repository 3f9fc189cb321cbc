"""Shared test settings: deterministic, single-threaded (CI has 2 cores), quiet; fixtures writing
tiny audio files and manifests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault(
    "OMP_WAIT_POLICY", "PASSIVE"
)  # before torch loads OpenMP (speechllm/__init__)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

if TYPE_CHECKING:
    from tests.tiny_run import TinyRun

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One tiny trained run, exported (``tests/tiny_run.py``), shared by every test that asks."""
    from tests.tiny_run import train_tiny_run  # loads the training stack only when asked for

    return train_tiny_run(tmp_path_factory)


# Fuzz tests (hypothesis): the default profile is derandomized and small, so CI is repeatable and
# takes seconds; HYPOTHESIS_PROFILE=long searches far more inputs (opt-in).
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
