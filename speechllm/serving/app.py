"""The OpenAI-compatible HTTP app (FastAPI): chat completions, models, health, playground.

``POST /v1/chat/completions`` answers in OpenAI's schema, or as server-sent events of
``chat.completion.chunk`` with ``stream: true``; any OpenAI client works against it. A refused
request gets OpenAI's error body (``{"error": {"message", "type", "param", "code"}}``) with a
4xx; nothing a client sends can stop the server.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from speechllm.data.features import Featurizer
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving.batcher import Answer, Batcher
from speechllm.serving.jobs import Job, ServingError, prepare
from speechllm.serving.schema import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ErrorDetail,
    ErrorResponse,
    ModelCard,
    ModelList,
    completion_id,
)
from speechllm.serving.settings import ServeConfig


def create_app(model: SpeechLLM, name: str, config: ServeConfig | None = None) -> FastAPI:
    """The app serving ``model`` (in eval mode) under the model id ``name``."""
    config = config or ServeConfig()
    batcher = Batcher(model, config.max_batch_size, config.max_wait_ms)
    featurizer = Featurizer(model.encoder.feature_extractor, not model.encoder.real_length)
    created = int(time.time())
    playground = (files("speechllm.serving") / "static" / "index.html").read_text()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="speechllm-serve", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.state.batcher = batcher

    @app.exception_handler(ServingError)
    async def serving_error(_: Request, error: ServingError) -> JSONResponse:
        return _error(error.status, error.message, error.kind, error.param, error.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, _describe(error), code="invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return playground

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "model": name, "batches": batcher.batches, "items": batcher.items}

    @app.get("/v1/models")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=name, created=created)])

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest) -> ChatCompletion | StreamingResponse:
        if request.model != name:
            raise ServingError(
                404,
                f"model {request.model!r} not found; this server serves {name!r}",
                "model",
                "model_not_found",
            )
        job = await run_in_threadpool(prepare, request, featurizer, config)
        if request.stream:
            return StreamingResponse(_events(batcher, job, name), media_type="text/event-stream")
        try:
            answer = await batcher.submit(job)
        except Exception as error:
            raise ServingError(500, f"generation failed: {error}", kind="server_error") from None
        return ChatCompletion(
            model=name,
            choices=[
                Choice(
                    message=AssistantMessage(content=answer.text),
                    finish_reason=answer.finish_reason,
                )
            ],
        )

    return app


async def _events(batcher: Batcher, job: Job, name: str) -> AsyncIterator[str]:
    """OpenAI's stream: a role chunk, content chunks, a finish chunk, ``[DONE]``; a failure
    mid-stream is an ``error`` event (the OpenAI client raises it)."""
    head = {"id": completion_id(), "created": int(time.time()), "model": name}

    def chunk(delta: Delta, finish: str | None = None) -> str:
        body = ChatCompletionChunk(
            **head, choices=[ChunkChoice(delta=delta, finish_reason=finish)]
        ).model_dump_json(exclude_none=True)
        return f"data: {body}\n\n"

    yield chunk(Delta(role="assistant", content=""))
    try:
        async for piece in batcher.stream(job):
            if isinstance(piece, Answer):
                yield chunk(Delta(), piece.finish_reason)
            else:
                yield chunk(Delta(content=piece))
    except Exception as error:
        detail = ErrorDetail(message=f"generation failed: {error}", type="server_error")
        yield f"data: {ErrorResponse(error=detail).model_dump_json()}\n\n"
        return
    yield "data: [DONE]\n\n"


def _error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    detail = ErrorDetail(message=message, type=kind, param=param, code=code)
    return JSONResponse(ErrorResponse(error=detail).model_dump(), status_code=status)


def _describe(error: RequestValidationError) -> str:
    """Pydantic's errors as one line a client can act on (malformed JSON said plainly)."""
    problems = []
    for item in error.errors()[:3]:
        if item["type"] == "json_invalid":
            return f"malformed JSON: {item.get('ctx', {}).get('error', item['msg'])}"
        where = ".".join(str(p) for p in item["loc"][1:]) or "body"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413, before it is all in memory.

    Starlette and uvicorn have no such setting (uvicorn bounds only headers): a declared
    ``Content-Length`` over the limit is refused at once, and a chunked body is counted as it
    arrives (FastAPI turns the ``HTTPException`` raised while reading into the 413).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large()(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request body over this server's limit of {self.limit} bytes"

    def _too_large(self) -> JSONResponse:
        return _error(413, self._message(), code="body_too_large")
