"""Run the app under uvicorn: in the foreground (``speechllm-serve``) or in a background thread
on a free loopback port (tests, the load benchmark, notebooks).

Both take their socket limits from the app's :class:`ServeConfig`: connections (uvicorn's
``limit_concurrency``: 503 past it), keep-alive and header-size limits, a bounded graceful
shutdown, and a deadline for reading each request, which uvicorn lacks (its only timer is for
idle keep-alive connections, so a client trickling headers held a socket forever).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from speechllm.models.pretrained import load
from speechllm.models.text_classifier import TextClassifier
from speechllm.serving.app import create_app
from speechllm.serving.classify import create_classifier_app
from speechllm.serving.settings import ServeConfig

log = logging.getLogger(__name__)


def load_app(
    model: str, name: str | None = None, device: str = "cpu", config: ServeConfig | None = None
) -> FastAPI:
    """The app for an export folder, checkpoint or hub id; served as ``name`` (default: ``model``
    as given, as vLLM does): a speech LLM behind chat completions and transcriptions, a text
    classifier behind moderations (:mod:`speechllm.serving.classify`)."""
    loaded = load(model, device)
    if isinstance(loaded, TextClassifier):
        return create_classifier_app(loaded, name or model, config)
    return create_app(loaded, name or model, config)


def uvicorn_config(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> uvicorn.Config:
    """uvicorn's settings for ``app``, with the limits of its ``ServeConfig``."""
    config: ServeConfig = app.state.config
    protocol = type("ReadDeadlineH11", (ReadDeadline,), {"read_timeout_s": config.read_timeout_s})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol,
        ws="none",
        limit_concurrency=config.max_connections,
        timeout_keep_alive=config.keep_alive_s,
        timeout_graceful_shutdown=config.shutdown_timeout_s,
        h11_max_incomplete_event_size=config.max_header_bytes,
    )


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (SIGTERM: in-flight work gets the shutdown timeout)."""
    if not _loopback(host) and app.state.config.api_key is None:
        log.warning(
            "serving on %s without an API key: anyone who can reach this port can use the "
            "model (set --api-key or SPEECHLLM_API_KEY)",
            host,
        )
    uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()


@contextmanager
def running(app: FastAPI, timeout_s: float = 30.0) -> Iterator[str]:
    """``app`` served from a thread on a free loopback port; yields its base URL
    (``http://127.0.0.1:PORT``) once it accepts requests, and shuts it down on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReadDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline of ``read_timeout_s`` for each whole request
    (headers and body), counted from when the connection opens or its last response ends;
    a connection that misses it is closed (the app, if it was reading the body, sees a
    disconnect)."""

    read_timeout_s: float = 30.0
    _deadline: asyncio.TimerHandle | None = None
    _waiting_after: object = None
    """The request cycle that was current when the deadline was armed."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and cycle is not self._waiting_after and not cycle.more_body:
            self._disarm()  # a new request, read to its end

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._deadline = self.loop.call_later(self.read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        self.logger.info(
            "closing a connection that sent no whole request in %gs", self.read_timeout_s
        )
        self.transport.close()
