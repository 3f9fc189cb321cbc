"""A client that leaves frees its slot, and shutdown takes a bounded time.

The model is slowed (50 ms a decoding step, no ``eos``) so an answer of 400 tokens would run
20 s: long enough to watch it stop. Before the fix, generation ran to its end whatever the
client did, and a server asked to stop waited for it (SIGTERM did not stop the server).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from speechllm.inference import answer
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving import ServeConfig, load_app, running
from tests.serving.helpers import health, post, slowed, wait_for
from tests.serving.world import file_part, user

LONG = 400
CONFIG = ServeConfig(
    max_batch_size=4,
    max_wait_ms=5,
    max_audio_seconds=2.0,
    max_tokens=LONG,
    default_max_tokens=8,
    shutdown_timeout_s=1.0,
)


@pytest.fixture(scope="module")
def app(export: Path) -> FastAPI:
    return load_app(str(export), "tiny", config=CONFIG)


@pytest.fixture(scope="module")
def url(app: FastAPI) -> Iterator[str]:
    with running(app) as base:
        yield base


def _send(url: str, recording: Path, stream: bool, max_tokens: int = LONG) -> socket.socket:
    """A request on a raw socket, left unread: closing the socket is the client leaving."""
    body = json.dumps(
        {
            "model": "tiny",
            "messages": user("Say it.", file_part(recording)),
            "max_tokens": max_tokens,
            "stream": stream,
        }
    ).encode()
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_client_that_leaves_stops_its_generation_at_the_next_step(
    app: FastAPI,
    url: str,
    recordings: list[Path],
    reference: SpeechLLM,
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    before = health(url)
    with slowed(app.state.batcher.model, monkeypatch) as steps:
        sock = _send(url, recordings[0], stream)
        wait_for(lambda: steps() >= 5)  # decoding
        if stream:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.close()
        wait_for(lambda: health(url)["cancelled"] > before["cancelled"], timeout=10)
        time.sleep(0.5)
        stopped_at = steps()
        time.sleep(0.5)
        assert steps() == stopped_at  # nothing decodes any more
        assert stopped_at < LONG / 4  # far from the 400 steps it would have run
    # the slot is free: the next request is answered, and right
    status, data = post(url, json.dumps(_request(recordings[1])).encode())
    assert status == 200
    expected = answer(reference, recordings[1], "Say it.", max_new_tokens=8)
    assert data["choices"][0]["message"]["content"] == expected


def _request(recording: Path, **fields: object) -> dict:
    return {"model": "tiny", "messages": user("Say it.", file_part(recording)), **fields}


def test_a_row_stops_alone_while_its_batch_neighbours_finish(
    app: FastAPI,
    url: str,
    recordings: list[Path],
    reference: SpeechLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results: dict[str, object] = {}
    batcher = app.state.batcher
    monkeypatch.setattr(batcher, "max_wait", 0.5)  # the two surely share a batch
    before = health(url)
    with slowed(batcher.model, monkeypatch, seconds=0.02) as steps:
        leaver = _send(url, recordings[2], stream=False, max_tokens=60)

        def stay() -> None:
            results["stay"] = post(url, json.dumps(_request(recordings[3], max_tokens=60)).encode())

        stayer = threading.Thread(target=stay)
        stayer.start()
        wait_for(lambda: steps() >= 5)
        leaver.close()
        stayer.join(60)
    status, data = results["stay"]
    assert status == 200
    # the neighbour ran all 60 steps (no eos while slowed) and its answer is its own
    assert data["usage"]["completion_tokens"] == 60
    assert data["choices"][0]["finish_reason"] == "length"
    after = health(url)
    assert (after["items"] - before["items"], after["batches"] - before["batches"]) == (2, 1)


def test_queued_work_of_a_client_that_left_is_dropped(
    app: FastAPI, url: str, recordings: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    batcher = app.state.batcher
    monkeypatch.setattr(batcher, "max_batch_size", 1)  # the second request must queue
    with slowed(batcher.model, monkeypatch) as steps:
        items = health(url)["items"]
        running_one = _send(url, recordings[0], stream=False)
        wait_for(lambda: steps() >= 3)
        queued = _send(url, recordings[1], stream=False)
        time.sleep(0.3)
        queued.close()
        time.sleep(0.3)
        running_one.close()
        wait_for(lambda: steps() > 0 and health(url)["items"] == items + 1, timeout=10)
        time.sleep(0.5)
    assert health(url)["items"] == items + 1  # only the first ever reached the model


def test_shutdown_abandons_work_in_flight_within_its_timeout(
    export: Path, recordings: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_app(str(export), "tiny", config=CONFIG)
    with slowed(app.state.batcher.model, monkeypatch) as steps:
        with running(app) as base:
            replies: list[object] = []
            client = threading.Thread(
                target=lambda: replies.append(_try_post(base, _request(recordings[0])))
            )
            client.start()
            wait_for(lambda: steps() >= 5)
            start = time.monotonic()
        stopped = time.monotonic() - start  # leaving `running` is SIGTERM's should_exit
        client.join(30)
        at_exit = steps()
        time.sleep(0.5)
    # shutdown_timeout_s (1 s) for the request, then its row stops at the next step
    assert stopped < 5, stopped
    assert steps() == at_exit < LONG / 2
    assert replies and replies[0] != 200


def _try_post(url: str, body: dict) -> object:
    try:
        return post(url, json.dumps({**body, "max_tokens": LONG}).encode())[0]
    except OSError as error:  # the connection was closed under it
        return error
