"""Shared by the serving tests: one tiny export, its recordings, a separately loaded copy of
the model (what ``speechllm-infer`` answers), and a running server per test module, configured
by that module's ``CONFIG``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from speechllm.inference import load_model
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import save_tiny_export
from speechllm.serving import load_app, running
from tests.serving.world import write_recordings


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


@pytest.fixture(scope="module")
def server(export: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, FastAPI]]:
    """The app on loopback, with the requesting test module's ``CONFIG``."""
    app = load_app(str(export), "tiny", config=request.module.CONFIG)
    with running(app) as url:
        yield url, app
