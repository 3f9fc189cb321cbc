"""ASGI middleware that refuses a request before the app reads it: no valid API key (401), a
body over the size limit (413). Both answer in OpenAI's error shape."""

from __future__ import annotations

import hmac

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from speechllm.serving.errors import error_response


class ApiKey:
    """Requires ``Authorization: Bearer <key>`` on every path but ``open_paths``.

    The comparison is :func:`hmac.compare_digest` on bytes, so the time it takes does not tell
    an attacker how much of a guess was right.
    """

    def __init__(self, app: ASGIApp, key: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self.expected = f"Bearer {key}".encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        message = (
            "Incorrect API key provided"
            if given
            else "You didn't provide an API key: send it as 'Authorization: Bearer <key>'"
        )
        response = error_response(
            401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)


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
            response = error_response(413, self._message(), code="body_too_large")
            await response(scope, receive, send)
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
