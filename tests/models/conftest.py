"""The Hub stand-in and a two-task tiny batch as fixtures for the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from speechllm.testing import tiny_batches
from tests.models.hub_standin import HubStandIn, online


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    yield from online(monkeypatch)


@pytest.fixture
def batch() -> dict:
    """Three items, ``asr`` and ``ic``."""
    return tiny_batches(num_batches=1, batch_size=3, tasks=("asr", "ic"), seed=1)[0]
