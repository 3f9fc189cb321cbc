"""The OpenAI-compatible HTTP app (FastAPI): chat completions, transcriptions, models, health,
playground.

``POST /v1/chat/completions`` answers in OpenAI's schema, or as server-sent events of
``chat.completion.chunk`` with ``stream: true``; ``POST /v1/audio/transcriptions`` takes an
upload as OpenAI's does; any OpenAI client works against both. A refused request gets OpenAI's
error body (``{"error": {"message", "type", "param", "code"}}``) with a 4xx; nothing a client
sends can stop the server, and a client that disconnects takes its work with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving.batcher import Answer, Batcher
from speechllm.serving.jobs import Intake, Job, ServingError, prepare
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
    Transcription,
    Usage,
    completion_id,
)
from speechllm.serving.settings import ServeConfig
from speechllm.serving.shell import app_shell
from speechllm.serving.transcriptions import transcription_job, transcription_response

CLIENT_GONE = 499
"""nginx's status for a request whose client closed the connection (nobody reads it)."""


def create_app(model: SpeechLLM, name: str, config: ServeConfig | None = None) -> FastAPI:
    """The app serving ``model`` (in eval mode) under the model id ``name``."""
    config = config or ServeConfig()
    batcher = Batcher(model, config.max_batch_size, config.max_wait_ms)
    intake = Intake.of(model, config)
    playground = (files("speechllm.serving") / "static" / "index.html").read_text()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop(config.shutdown_timeout_s)

    def stats() -> dict[str, int]:
        return {"batches": batcher.batches, "items": batcher.items, "cancelled": batcher.cancelled}

    app, check_model = app_shell(name, config, stats, lifespan)
    app.state.batcher = batcher

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return playground

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatCompletionRequest, request: Request) -> ChatCompletion | Response:
        check_model(body.model)
        job = await run_in_threadpool(prepare, body, intake)
        if body.stream:
            usage = body.stream_options is not None and body.stream_options.include_usage
            events = _events(batcher, job, name, usage)
            return StreamingResponse(events, media_type="text/event-stream")
        answer = await _unless_gone(request, _generated(batcher, job))
        if answer is None:
            return Response(status_code=CLIENT_GONE)
        return ChatCompletion(
            model=name,
            choices=[
                Choice(
                    message=AssistantMessage(content=answer.text),
                    finish_reason=answer.finish_reason,
                )
            ],
            usage=Usage.of(answer.prompt_tokens, answer.completion_tokens),
        )

    @app.post("/v1/audio/transcriptions", response_model=None)
    async def transcriptions(request: Request) -> Transcription | Response:
        job, response_format = await transcription_job(request, name, intake)
        answer = await _unless_gone(request, _generated(batcher, job))
        if answer is None:
            return PlainTextResponse("", status_code=CLIENT_GONE)
        return transcription_response(answer, response_format)

    return app


async def _generated(batcher: Batcher, job: Job) -> Answer:
    try:
        return await batcher.submit(job)
    except ServingError:
        raise
    except Exception as error:
        raise ServingError(500, f"generation failed: {error}", kind="server_error") from None


async def _unless_gone(request: Request, work: Awaitable[Answer]) -> Answer | None:
    """``work``'s answer, or ``None`` once the client has disconnected: ``work`` is then
    cancelled, which takes the job out of its batch (or stops its row at the next token)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request is cancelled (server shutdown)
        gone.cancel()
        if not task.done():
            task.cancel()
    return task.result() if task.done() and not task.cancelled() else None


async def _disconnect(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: only that can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _events(batcher: Batcher, job: Job, name: str, usage: bool) -> AsyncIterator[str]:
    """OpenAI's stream: a role chunk, content chunks, a finish chunk, with ``include_usage`` a
    usage chunk, ``[DONE]``; a failure mid-stream is an ``error`` event (the OpenAI client
    raises it). A client that leaves cancels this generator, which frees its row."""
    head = {"id": completion_id(), "created": int(time.time()), "model": name}

    def chunk(choices: list[ChunkChoice], **extra: object) -> str:
        body = ChatCompletionChunk(**head, choices=choices, **extra)
        return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

    yield chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
    try:
        async for piece in batcher.stream(job):
            if isinstance(piece, Answer):
                yield chunk([ChunkChoice(delta=Delta(), finish_reason=piece.finish_reason)])
                if usage:
                    yield chunk([], usage=Usage.of(piece.prompt_tokens, piece.completion_tokens))
            else:
                yield chunk([ChunkChoice(delta=Delta(content=piece))])
    except Exception as error:
        kind = error.kind if isinstance(error, ServingError) else "server_error"
        detail = ErrorDetail(message=f"generation failed: {error}", type=kind)
        yield f"data: {ErrorResponse(error=detail).model_dump_json()}\n\n"
        return
    yield "data: [DONE]\n\n"
