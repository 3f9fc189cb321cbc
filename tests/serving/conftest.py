"""Shared by the serving tests: one tiny export, its recordings, and a separately loaded copy
of the model (what ``speechllm-infer`` answers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechllm.inference import load_model
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import save_tiny_export
from tests.serving_world import write_recordings


@pytest.fixture(scope="package")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_export(tmp_path_factory.mktemp("serve") / "export")


@pytest.fixture(scope="package")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_recordings(tmp_path_factory.mktemp("recordings"), 6)


@pytest.fixture(scope="package")
def reference(export: Path) -> SpeechLLM:
    """A separately loaded copy: what ``speechllm-infer`` answers."""
    return load_model(export)
