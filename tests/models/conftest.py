"""The Hub stand-in as a fixture for the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.hub_standin import HubStandIn, online


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    yield from online(monkeypatch)
