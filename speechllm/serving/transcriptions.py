"""OpenAI's ``POST /v1/audio/transcriptions``: a multipart upload (``file``, ``model``, and
optionally ``prompt``, ``response_format``, ``language``, ``temperature``) -> the model's
transcript, as ``{"text", "usage"}`` or plain text.

The instruction is the first of the package's ``asr`` templates ("Transcribe the audio.").
A speech LLM follows instructions, so a ``prompt`` replaces it (OpenAI's Whisper reads the
prompt as preceding text; here it is what the model is asked). ``language`` is checked to be a
language code and otherwise unused: the model's own training decides the language it writes.

Form parsing needs ``python-multipart`` (the ``serve`` extra); without it the route answers
501 saying so, and the rest of the server works.
"""

from __future__ import annotations

import re
from importlib.util import find_spec

from fastapi import Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from speechllm.data.instructions import load_templates
from speechllm.serving.batcher import Answer
from speechllm.serving.jobs import Intake, Job, ServingError, generation_settings
from speechllm.serving.schema import Transcription, TranscriptionUsage

MULTIPART = find_spec("python_multipart") is not None
"""Whether Starlette can parse ``multipart/form-data`` here."""
FORMATS = ("json", "text")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?")


def default_instruction() -> str:
    return load_templates("asr")["seen"][0]


async def transcription_job(request: Request, name: str, intake: Intake) -> tuple[Job, str]:
    """The job an upload asks for, and its ``response_format``.

    Raises:
        ServingError: 400 naming the field, 404 for another model, 501 without multipart.
    """
    if not MULTIPART:
        raise ServingError(
            501,
            "this server cannot read multipart uploads: install python-multipart "
            "(pip install 'speechllm[serve]') and restart it",
            code="multipart_unavailable",
            kind="server_error",
        )
    form = await request.form(max_files=1, max_fields=16, max_part_size=64 * 1024)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ServingError(400, "file: an audio file upload is required", "file")
    model = _field(form, "model")
    if model is None:
        raise ServingError(400, "model: required", "model")
    if model != name:
        message = f"model {model!r} not found; this server serves {name!r}"
        raise ServingError(404, message, "model", "model_not_found")
    response_format = _field(form, "response_format") or "json"
    if response_format not in FORMATS:
        message = f"response_format must be one of {', '.join(FORMATS)}, got {response_format!r}"
        raise ServingError(400, message, "response_format")
    language = _field(form, "language")
    if language is not None and not _LANGUAGE.fullmatch(language):
        raise ServingError(400, f"language: not a language code: {language!r}", "language")
    temperature = _number(_field(form, "temperature") or "0", "temperature", 0.0, 1.0)
    instruction = (_field(form, "prompt") or "").strip() or default_instruction()
    settings = generation_settings(intake.config, None, temperature)
    data = await upload.read()
    if not data:
        raise ServingError(400, "file: the upload is empty", "file", "empty_audio")
    where = f"file ({upload.filename or 'upload'})"
    job = await run_in_threadpool(intake.job, data, where, "file", instruction, settings, "prompt")
    return job, response_format


def transcription_response(
    answer: Answer, response_format: str
) -> Transcription | PlainTextResponse:
    if response_format == "text":
        return PlainTextResponse(answer.text)
    usage = TranscriptionUsage(
        input_tokens=answer.prompt_tokens,
        output_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
    )
    return Transcription(text=answer.text, usage=usage)


def _field(form: FormData, key: str) -> str | None:
    value = form.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ServingError(400, f"{key}: expected a text field, got a file", key)


def _number(text: str, key: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ServingError(400, f"{key}: not a number: {text[:32]!r}", key) from None
    if not low <= value <= high:  # also NaN
        raise ServingError(400, f"{key} must be in [{low:g}, {high:g}], got {value:g}", key)
    return value
