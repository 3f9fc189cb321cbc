"""OpenAI's chat completions schema, the part a speech LLM serves (pydantic models).

A request carries its recording as an ``input_audio`` content part, as OpenAI's audio models
and vLLM's speech models (Ultravox, Qwen2-Audio, Voxtral) take it::

    {"model": "tiny", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Transcribe the audio."},
        {"type": "input_audio", "input_audio": {"data": "<base64>", "format": "wav"}}]}]}

Fields a client may send but this server does not use are accepted and ignored, so stock
clients work unchanged.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from speechllm.serving.settings import MAX_STOP_CHARS, MAX_STOP_STRINGS


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class InputAudio(BaseModel):
    data: str
    """The encoded file, base64."""
    format: Literal["wav", "mp3", "flac", "ogg"]


class AudioPart(BaseModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[TextPart | AudioPart, Field(discriminator="type")]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False
    """Send a last chunk with ``usage`` and no choices, as OpenAI does."""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    """OpenAI's newer name for ``max_tokens``; wins when both are given."""
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    """0 (the default here, unlike OpenAI's 1) is greedy: the answer ``speechllm-infer`` gives."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] = 1
    """One answer per request."""

    @field_validator("stop")
    @classmethod
    def _bounded(cls, stop: str | list[str] | None) -> str | list[str] | None:
        """OpenAI's limit of 4 stop sequences, each of bounded length."""
        stops = [stop] if isinstance(stop, str) else stop or []
        if len(stops) > MAX_STOP_STRINGS:
            raise ValueError(f"at most {MAX_STOP_STRINGS} stop sequences, got {len(stops)}")
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"a stop sequence has at most {MAX_STOP_CHARS} characters")
        return stop

    def stop_strings(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return tuple(s for s in stops if s)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class Usage(BaseModel):
    prompt_tokens: int
    """Positions the LLM read: the prompt's text tokens plus the audio embeddings."""
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "speechllm"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TranscriptionUsage(BaseModel):
    """OpenAI's token usage of a transcription."""

    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int


class Transcription(BaseModel):
    """``/v1/audio/transcriptions``' ``json`` response."""

    text: str
    usage: TranscriptionUsage


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
