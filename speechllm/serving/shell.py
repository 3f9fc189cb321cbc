"""What every served model's app has, whatever it answers: the body limit, the API key, OpenAI's
error bodies, ``GET /health`` and ``GET /v1/models``, and the check that a request names the
served model. The speech LLM's app (:mod:`speechllm.serving.app`) and the text classifier's
(:mod:`speechllm.serving.classify`) add their routes to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI

from speechllm.serving.errors import install_error_handlers
from speechllm.serving.guards import ApiKey, BodyLimit
from speechllm.serving.jobs import ServingError
from speechllm.serving.schema import ModelCard, ModelList
from speechllm.serving.settings import ServeConfig

DOCS = {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"}


def app_shell(
    name: str,
    config: ServeConfig,
    stats: Callable[[], dict[str, Any]],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> tuple[FastAPI, Callable[[str], None]]:
    """The app serving model id ``name`` (``/health`` adds ``stats()``), and the check a route
    calls with the request's ``model`` (404 ``model_not_found`` for another)."""
    docs = DOCS if config.docs else dict.fromkeys(DOCS)
    app = FastAPI(title="speechllm-serve", lifespan=lifespan, **docs)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    if config.api_key is not None:  # outermost: refused before the body is read
        open_paths = {"/", "/health"} | ({*DOCS.values()} if config.docs else set())
        app.add_middleware(ApiKey, key=config.api_key, open_paths=frozenset(open_paths))
    app.state.config = config
    install_error_handlers(app)
    created = int(time.time())

    def check_model(requested: str) -> None:
        if requested != name:
            message = f"model {requested!r} not found; this server serves {name!r}"
            raise ServingError(404, message, "model", "model_not_found")

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "model": name, **stats()}

    @app.get("/v1/models")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=name, created=created)])

    return app, check_model
