"""Raw HTTP for the serving tests (bodies and sockets no client would send), and a slowed
model whose generation runs long enough to watch it stop."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
import torch

from speechllm.models.speech_llm import SpeechLLM


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout: float = 120,
    **headers: str,
) -> tuple[int, Any, dict[str, str]]:
    """``(status, parsed JSON or text, headers)``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    if body is not None:
        headers = {"Content-Type": "application/json", **headers}
    connection.request(method, path, body, headers)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    try:
        data = json.loads(raw)
    except ValueError:
        data = raw.decode(errors="replace")
    return response.status, data, dict(response.getheaders())


def post(url: str, body: bytes, path: str = "/v1/chat/completions", **headers: str) -> Any:
    """A raw POST; ``(status, parsed JSON)``."""
    status, data, _ = request(url, "POST", path, body, **headers)
    return status, data


def health(url: str, **headers: str) -> dict[str, Any]:
    return request(url, "GET", "/health", timeout=30, **headers)[1]


def is_openai_error(data: Any) -> bool:
    """OpenAI's error object: ``{"error": {"message": str, "type": str, "param", "code"}}``."""
    error = data.get("error") if isinstance(data, dict) else None
    return (
        isinstance(error, dict)
        and set(error) == {"message", "type", "param", "code"}
        and isinstance(error["message"], str)
        and bool(error["message"])
        and isinstance(error["type"], str)
        and "detail" not in data
    )


@contextmanager
def slowed(
    model: SpeechLLM, monkeypatch: pytest.MonkeyPatch, seconds: float = 0.05
) -> Iterator[Callable[[], int]]:
    """Each LLM forward pass (one decoding step) takes ``seconds`` longer and never picks
    ``eos``, so an answer runs to ``max_tokens``; yields the count of passes so far."""
    base = model.llm.base_model
    forward = base.forward
    eos = model.llm.eos_token_id
    steps = [0]

    def slow(*args: Any, **kwargs: Any) -> Any:
        steps[0] += 1
        time.sleep(seconds)
        out = forward(*args, **kwargs)
        out.logits[..., eos] = torch.finfo(out.logits.dtype).min
        return out

    monkeypatch.setattr(base, "forward", slow)
    yield lambda: steps[0]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
