"""``POST /v1/audio/transcriptions`` with the official ``openai`` client: a multipart upload in,
the model's answer to the ASR instruction out (json with usage, or text); client mistakes are
4xx in OpenAI's shape. Without ``python-multipart`` the route says so (501) and the rest of the
server works."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from fastapi import FastAPI

from speechllm.inference import answer
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving import ServeConfig, transcriptions
from tests.serving.helpers import is_openai_error, request

CONFIG = ServeConfig(max_audio_seconds=2.0, max_tokens=16, default_max_tokens=8, api_key="k")


@pytest.fixture
def client(server: tuple[str, FastAPI]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="k", max_retries=0, timeout=60)


needs_multipart = pytest.mark.skipif(
    not transcriptions.MULTIPART, reason="python-multipart is not installed (the serve extra)"
)


@needs_multipart
def test_transcriptions_with_the_openai_client(
    client: openai.OpenAI, recordings: list[Path], reference: SpeechLLM
) -> None:
    instruction = transcriptions.default_instruction()
    for path in recordings[:3]:  # wav, flac, mp3
        expected = answer(reference, path, instruction, max_new_tokens=8)
        with path.open("rb") as file:
            got = client.audio.transcriptions.create(model="tiny", file=file)
        assert got.text == expected
        assert got.usage.output_tokens > 0 and got.usage.input_tokens > 0
        with path.open("rb") as file:
            text = client.audio.transcriptions.create(
                model="tiny", file=file, response_format="text", language="en"
            )
        assert text == expected
    # a prompt is the instruction a speech LLM follows
    with recordings[0].open("rb") as file:
        got = client.audio.transcriptions.create(model="tiny", file=file, prompt="Say it.")
    assert got.text == answer(reference, recordings[0], "Say it.", max_new_tokens=8)


@needs_multipart
def test_transcription_mistakes_are_4xx(client: openai.OpenAI, recordings: list[Path]) -> None:
    path = recordings[0]
    cases = [
        ({"model": "whisper-1"}, openai.NotFoundError, "not found"),
        ({"response_format": "srt"}, openai.BadRequestError, "response_format"),
        ({"language": "english!"}, openai.BadRequestError, "language"),
        ({"temperature": 3}, openai.BadRequestError, "temperature"),
        ({"prompt": "x" * 10_000}, openai.BadRequestError, "context|characters"),
        ({"prompt": "x" * 100_000}, openai.BadRequestError, "maximum size"),  # a form field
    ]
    for fields, error, message in cases:
        with path.open("rb") as file, pytest.raises(error, match=message):
            client.audio.transcriptions.create(**{"model": "tiny", "file": file, **fields})
    with pytest.raises(openai.BadRequestError, match="unreadable"):
        client.audio.transcriptions.create(model="tiny", file=("x.wav", b"not audio"))
    with pytest.raises(openai.BadRequestError, match="audio_too_short|too short"):
        client.audio.transcriptions.create(model="tiny", file=("x.wav", _one_sample()))


def _one_sample() -> bytes:
    import torch

    from tests.serving.world import wav_bytes

    return wav_bytes(torch.full((1,), 0.1))


def test_a_body_that_is_not_a_form_is_a_4xx_or_the_missing_parser_is_said(
    server: tuple[str, FastAPI],
) -> None:
    status, data, _ = request(
        server[0], "POST", "/v1/audio/transcriptions", b"{}", Authorization="Bearer k"
    )
    assert is_openai_error(data), data
    if transcriptions.MULTIPART:
        assert status == 400 and data["error"]["param"] == "file"
    else:
        assert status == 501 and "python-multipart" in data["error"]["message"]
