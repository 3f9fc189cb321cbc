"""Issue 34's request attacks on a real server: each is refused at once with a 4xx in OpenAI's
shape (or, for a tiny temperature, answered), and the server goes on answering correctly.

Before the fixes: a 100k-character instruction was answered after 95 s on the one generation
thread (1M: still running after 6 min); 4 stop strings of 1 MB or 20,000 stop strings took
10-15 s and kept 3-4 GB; ``temperature: 1e-300`` was a 500; unknown routes, wrong methods and
unparsable bodies answered FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI

from speechllm.inference import answer
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving import ServeConfig
from speechllm.serving.settings import MAX_STOP_CHARS
from tests.serving.helpers import is_openai_error, post, request
from tests.serving.world import file_part, user

CONFIG = ServeConfig(
    max_batch_size=4,
    max_wait_ms=5,
    max_audio_seconds=2.0,
    max_body_bytes=32 * 2**20,  # room for the megabyte attacks: they must be refused by meaning
    max_tokens=32,
    default_max_tokens=8,
    max_prompt_tokens=64,
)
FAST_S = 5.0
"""A refusal takes milliseconds; this bound leaves room for a busy 2-core box."""


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _body(recording: Path, instruction: str = "Say it.", **fields: object) -> bytes:
    messages = user(instruction, file_part(recording))
    return json.dumps({"model": "tiny", "messages": messages, **fields}).encode()


def _timed_post(url: str, body: bytes) -> tuple[int, dict, float]:
    start = time.perf_counter()
    status, data = post(url, body)
    return status, data, time.perf_counter() - start


def test_long_instructions_are_refused_before_they_are_tokenized(
    server: tuple[str, FastAPI],
    recordings: list[Path],
    reference: SpeechLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, app = server
    llm = app.state.batcher.model.llm
    tokenize, seen = llm.tokenize, []
    monkeypatch.setattr(llm, "tokenize", lambda text: seen.append(len(text)) or tokenize(text))
    for chars in (100_000, 1_000_000):
        status, data, seconds = _timed_post(url, _body(recordings[0], "x" * chars))
        assert status == 400 and is_openai_error(data), data
        error = data["error"]
        assert (error["code"], error["param"], error["type"]) == (
            "context_length_exceeded",
            "messages",
            "invalid_request_error",
        )
        assert f"{chars} characters" in error["message"] and "64 tokens" in error["message"]
        assert seconds < FAST_S
    assert max(seen, default=0) < 10_000  # the megabyte never reached the tokenizer
    # under the character bound but over the token cap: counted, then refused
    status, data = post(url, _body(recordings[0], "word " * 20))
    assert status == 400 and data["error"]["code"] == "context_length_exceeded"
    assert re.search(r"resulted in \d+ tokens", data["error"]["message"]), data
    # and a prompt within the cap is answered as before
    reply = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0).chat.completions
    got = reply.create(model="tiny", messages=user("Say it.", file_part(recordings[0])))
    assert got.choices[0].message.content == answer(
        reference, recordings[0], "Say it.", max_new_tokens=8
    )


def test_stop_is_at_most_four_strings_of_bounded_length(
    server: tuple[str, FastAPI], recordings: list[Path], reference: SpeechLLM
) -> None:
    url = server[0]
    before = _rss_mb()
    attacks = {
        "4 strings of 1 MB": ["a" * 2**20] * 4,
        "20,000 strings": [f"s{i}" for i in range(20_000)],
        "5 strings": ["a", "b", "c", "d", "e"],
        "one string over the bound": "z" * (MAX_STOP_CHARS + 1),
    }
    for name, stop in attacks.items():
        status, data, seconds = _timed_post(url, _body(recordings[1], stop=stop))
        assert (status, name) == (400, name), data
        assert is_openai_error(data) and data["error"]["param"] == "stop", data
        assert seconds < FAST_S, (name, seconds)
    assert _rss_mb() - before < 500  # was +3-4 GB, kept
    # four stop strings at the bound are fine, and cut the answer as OpenAI does
    full = answer(reference, recordings[1], "Say it.", max_new_tokens=8)
    stop = next(c for c in full[1:] if c.isascii() and c.isalnum())
    stops = ["\x00" * MAX_STOP_CHARS, "\x01", "\x02", stop]
    status, data = post(url, _body(recordings[1], stop=stops))
    assert status == 200, data
    assert data["choices"][0]["message"]["content"] == full[: full.index(stop)]
    assert data["choices"][0]["finish_reason"] == "stop"


def test_a_tiny_temperature_is_greedy_not_a_500(
    server: tuple[str, FastAPI], recordings: list[Path], reference: SpeechLLM
) -> None:
    expected = answer(reference, recordings[2], "Say it.", max_new_tokens=8)
    for temperature in (1e-300, 5e-324, 1e-6):
        status, data = post(server[0], _body(recordings[2], temperature=temperature))
        assert status == 200, data
        assert data["choices"][0]["message"]["content"] == expected
    for bad in ("NaN", "Infinity", "-1e-300", "2.5"):  # JSON that Python's parser reads
        body = _body(recordings[2]).replace(b'"model"', f'"temperature": {bad}, "model"'.encode())
        status, data = post(server[0], body)
        assert status == 400 and is_openai_error(data), (bad, data)
        assert data["error"]["param"] == "temperature"


def test_max_tokens_is_bounded(server: tuple[str, FastAPI], recordings: list[Path]) -> None:
    for max_tokens in (33, 10**30, 0, -1, "many"):
        status, data = post(server[0], _body(recordings[0], max_tokens=max_tokens))
        assert status == 400 and is_openai_error(data), (max_tokens, data)
        assert data["error"]["param"] == "max_tokens"


def test_every_client_mistake_is_a_4xx_in_openais_shape(server: tuple[str, FastAPI]) -> None:
    url = server[0]
    cases = [  # (method, path, body, extra headers, status)
        ("GET", "/v1/nope", None, {}, 404),
        ("POST", "/v1/completions", b"{}", {}, 404),
        ("GET", "/v1/chat/completions", None, {}, 405),
        ("DELETE", "/v1/models", None, {}, 405),
        ("POST", "/v1/chat/completions", b'{"model": ', {}, 400),
        ("POST", "/v1/chat/completions", b"\xff\xfe\x00junk", {}, 400),
        ("POST", "/v1/chat/completions", b"[1, 2]", {}, 400),
        ("POST", "/v1/chat/completions", b'{"model": "tiny"}', {"Content-Type": "text/plain"}, 400),
        ("POST", "/v1/chat/completions", b"", {}, 400),
        ("POST", "/v1/chat/completions", b'{"model": "tiny", "messages": []}', {}, 400),
    ]
    for method, path, body, headers, status in cases:
        got, data, response_headers = request(url, method, path, body, **headers)
        assert (got, method, path, body) == (status, method, path, body), data
        assert is_openai_error(data), (method, path, data)
        if status == 405:
            assert "allow" in {k.lower() for k in response_headers}
    assert request(url, "GET", "/health")[0] == 200
