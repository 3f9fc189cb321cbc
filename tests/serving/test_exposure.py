"""What a server bound beyond loopback needs: an API key (OpenAI's 401), no open API docs, and
socket limits: a connection cap, and a deadline for each request, so slow-loris clients are
disconnected. Before: no key, ``/docs`` open, no connection limit or header timeout, and a
socket trickling headers stayed open for good."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest
from fastapi import FastAPI

from speechllm.cli import serve as cli
from speechllm.cli.serve import main
from speechllm.serving import (
    ServeConfig,
    create_app,
    load_app,
    running,
    server,
    uvicorn_config,
)
from tests.serving.helpers import is_openai_error, request
from tests.serving.world import file_part, user

KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def locked(export: Path) -> Iterator[str]:
    config = ServeConfig(api_key=KEY, max_audio_seconds=2.0, default_max_tokens=4)
    with running(load_app(str(export), "tiny", config=config)) as url:
        yield url


def test_an_api_key_is_required_except_for_health(locked: str, recordings: list[Path]) -> None:
    messages = user("Say it.", file_part(recordings[0]))
    for key in ("wrong", KEY[:-1], KEY + "x"):
        client = openai.OpenAI(base_url=f"{locked}/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(model="tiny", messages=messages)
        assert refused.value.code == "invalid_api_key"
    for path in ("/v1/models", "/v1/chat/completions", "/v1/nope"):
        status, data, headers = request(locked, "GET", path)
        assert status == 401 and is_openai_error(data), (path, data)
        assert headers.get("www-authenticate", headers.get("WWW-Authenticate")) == "Bearer"
    status, data, _ = request(locked, "GET", "/v1/models", Authorization=f"Basic {KEY}")
    assert status == 401
    assert request(locked, "GET", "/health")[0] == 200
    assert request(locked, "GET", "/")[0] == 200  # the playground page itself holds no data
    client = openai.OpenAI(base_url=f"{locked}/v1", api_key=KEY, max_retries=0)
    assert client.chat.completions.create(model="tiny", messages=messages).choices


def test_api_docs_are_off_unless_asked_for(locked: str, reference) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        status, data, _ = request(locked, "GET", path, Authorization=f"Bearer {KEY}")
        assert status == 404 and is_openai_error(data), path
    app = create_app(reference, "tiny", ServeConfig(docs=True))
    with running(app) as url:
        assert request(url, "GET", "/openapi.json")[1]["info"]["title"] == "speechllm-serve"
        assert request(url, "GET", "/docs")[0] == 200


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (it sends nothing else)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _response(sock: socket.socket) -> bytes:
    """One whole response (headers and a ``Content-Length`` body) read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(
        next(
            v
            for k, v in (h.split(b": ", 1) for h in head.split(b"\r\n")[1:])
            if k.lower() == b"content-length"
        )
    )
    while len(body) < length:
        body += sock.recv(4096)
    return data


def test_slow_loris_connections_are_closed_and_connections_capped(reference) -> None:
    config = ServeConfig(read_timeout_s=1.0, max_connections=3, keep_alive_s=1)
    with running(create_app(reference, "tiny", config)) as url:
        silent = _connect(url)
        trickling = _connect(url)
        trickling.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        slow_body = _connect(url)
        slow_body.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
        )
        # three open sockets: the cap is reached, a fourth request is turned away
        assert request(url, "GET", "/health", timeout=10)[0] == 503
        start = time.monotonic()
        trickling.sendall(b"X-Slow: 1\r\n")  # still trickling: it gets no more time for it
        for sock in (silent, trickling, slow_body):
            assert _closed_within(sock, 5.0)
            sock.close()
        assert time.monotonic() - start < 5.0
        assert request(url, "GET", "/health", timeout=10)[0] == 200  # room again
        # a connection that sends whole requests in time is kept alive between them
        kept = _connect(url)
        for _ in range(2):
            kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _response(kept).startswith(b"HTTP/1.1 200")
            time.sleep(0.6)
        kept.close()


def test_uvicorn_gets_the_configs_limits(reference) -> None:
    config = ServeConfig(
        max_connections=7,
        keep_alive_s=3,
        max_header_bytes=4096,
        shutdown_timeout_s=2.5,
        read_timeout_s=4.0,
    )
    settings = uvicorn_config(create_app(reference, "tiny", config))
    assert (settings.limit_concurrency, settings.timeout_keep_alive) == (7, 3)
    assert settings.h11_max_incomplete_event_size == 4096
    assert settings.timeout_graceful_shutdown == 2.5
    assert settings.http.read_timeout_s == 4.0


def test_cli_flags_and_the_key_from_the_environment(
    export: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    served: list[tuple] = []
    monkeypatch.setattr(server, "serve", lambda *args: served.append(args))
    monkeypatch.setenv(cli.API_KEY_ENV, "from-env")
    main([str(export), "--max-prompt-tokens", "99", "--docs", "--max-connections", "5"])
    config: ServeConfig = served[-1][0].state.config
    assert (config.api_key, config.max_prompt_tokens, config.docs) == ("from-env", 99, True)
    assert config.max_connections == 5
    main([str(export), "--api-key", "from-flag", "--read-timeout-s", "3", "--max-header-kb", "8"])
    config = served[-1][0].state.config
    assert (config.api_key, config.read_timeout_s, config.max_header_bytes) == (
        "from-flag",
        3.0,
        8192,
    )


def test_binding_beyond_loopback_without_a_key_warns(
    reference, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from speechllm.serving import server

    ran: list[object] = []
    monkeypatch.setattr(server.uvicorn.Server, "run", lambda self: ran.append(self.config.host))
    with caplog.at_level("WARNING"):
        server.serve(create_app(reference, "tiny"), host="0.0.0.0")
        server.serve(create_app(reference, "tiny"), host="127.0.0.1")
        server.serve(create_app(reference, "tiny", ServeConfig(api_key="k")), host="0.0.0.0")
    assert ran == ["0.0.0.0", "127.0.0.1", "0.0.0.0"]
    warnings = [r for r in caplog.records if "without an API key" in r.getMessage()]
    assert len(warnings) == 1


def test_serve_config_refuses_an_empty_key_and_bad_limits() -> None:
    with pytest.raises(ValueError, match="api_key"):
        ServeConfig(api_key=" ")
    with pytest.raises(ValueError, match="read_timeout_s"):
        ServeConfig(read_timeout_s=0)
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        ServeConfig(max_prompt_tokens=0)


_ = FastAPI  # typing only
