"""Every refusal in OpenAI's error object, ``{"error": {"message", "type", "param", "code"}}``.

FastAPI answers its own errors as ``{"detail": ...}``: an unknown route (404), a wrong method
(405), a body it cannot parse or validate (422). OpenAI's clients read ``error.message``, so
those are rewritten here too; a body that fails validation is a 400, as OpenAI answers it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from speechllm.serving.jobs import ServingError
from speechllm.serving.schema import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)

_CODES = {
    401: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """OpenAI's error body with ``status``."""
    detail = ErrorDetail(message=message, type=kind, param=param, code=code)
    return JSONResponse(ErrorResponse(error=detail).model_dump(), status, headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error an app raises to :func:`error_response`."""

    @app.exception_handler(ServingError)
    async def serving_error(_: Request, error: ServingError) -> JSONResponse:
        return error_response(error.status, error.message, error.kind, error.param, error.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        message, param = describe(error)
        return error_response(400, message, param=param, code="invalid_request")

    @app.exception_handler(HTTPException)  # Starlette's: the router's 404/405 and FastAPI's own
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = str(error.detail)
        if error.status_code in (404, 405):  # OpenAI's words for a route it does not have
            message = f"Invalid URL ({request.method} {request.url.path}): {message}"
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        code = _CODES.get(error.status_code)
        return error_response(error.status_code, message, kind, code=code, headers=error.headers)

    @app.exception_handler(Exception)
    async def crash(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, f"internal error: {type(error).__name__}", "server_error")


def describe(error: RequestValidationError) -> tuple[str, str | None]:
    """Pydantic's errors as one line a client can act on (malformed JSON said plainly), and the
    first offending field."""
    problems, param = [], None
    for item in error.errors()[:3]:
        if item["type"] == "json_invalid":
            return f"malformed JSON: {item.get('ctx', {}).get('error', item['msg'])}", None
        where = ".".join(str(p) for p in item["loc"][1:]) or "body"
        param = param or where
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems) or "invalid request", param
