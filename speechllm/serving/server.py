"""Run the app under uvicorn: in the foreground (``speechllm-serve``) or in a background thread
on a free loopback port (tests, the load benchmark, notebooks)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import uvicorn
from fastapi import FastAPI

from speechllm.models.pretrained import load
from speechllm.serving.app import create_app
from speechllm.serving.settings import ServeConfig


def load_app(
    model: str, name: str | None = None, device: str = "cpu", config: ServeConfig | None = None
) -> FastAPI:
    """The app for an export folder, checkpoint or hub id; served as ``name`` (default: ``model``
    as given, as vLLM does)."""
    speech_llm = load(model).to(torch.device(device)).eval()
    return create_app(speech_llm, name or model, config)


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted."""
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@contextmanager
def running(app: FastAPI, timeout_s: float = 30.0) -> Iterator[str]:
    """``app`` served from a thread on a free loopback port; yields its base URL
    (``http://127.0.0.1:PORT``) once it accepts requests, and shuts it down on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
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
