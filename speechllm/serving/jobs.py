"""A chat request -> one :class:`Job` the batcher can run, or a :class:`ServingError` saying
what is wrong with it.

Everything that depends on one request alone (decoding its audio, its limits, its features) is
checked here, before it joins a batch, so a bad request is refused with a 4xx and never reaches
the batch its neighbours are in.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import torch

from speechllm.data.audio import decode_audio
from speechllm.data.errors import AudioError
from speechllm.data.features import Featurizer
from speechllm.serving.schema import AudioPart, ChatCompletionRequest, TextPart
from speechllm.serving.settings import GenerationSettings, ServeConfig


class ServingError(Exception):
    """A request the server refuses or fails, with its HTTP status and OpenAI's error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind


@dataclass(frozen=True)
class Job:
    """One recording and instruction, featurized, with the decoding settings asked for."""

    features: torch.Tensor
    length: int
    """Valid length of ``features`` in the encoder's input units (the batch contract's)."""
    instruction: str
    settings: GenerationSettings


def prepare(request: ChatCompletionRequest, featurizer: Featurizer, config: ServeConfig) -> Job:
    """Check ``request`` against ``config`` and featurize its recording.

    The instruction is the text of the single user turn that holds the audio; system turns are
    accepted and unused (the model's prompt template carries its own), earlier assistant turns
    are refused because the model was trained on single-turn prompts.

    Raises:
        ServingError: 400 naming the offending field (``messages[i].content[j]``).
    """
    if any(m.role == "assistant" for m in request.messages):
        raise ServingError(400, "multi-turn conversations are not supported", "messages")
    users = [i for i, m in enumerate(request.messages) if m.role == "user"]
    if len(users) != 1:
        raise ServingError(400, f"expected one user message, got {len(users)}", "messages")
    turn = users[0]
    content = request.messages[turn].content
    parts = [TextPart(type="text", text=content)] if isinstance(content, str) else content
    audio = [(j, p) for j, p in enumerate(parts) if isinstance(p, AudioPart)]
    if not audio:
        raise ServingError(400, "the user message has no input_audio part", "messages")
    if len(audio) > 1:  # the prompt template has one audio slot
        raise ServingError(
            400,
            f"{len(audio)} input_audio parts; this model takes at most 1 recording per request",
            f"messages[{turn}].content",
            "too_many_audio_parts",
        )
    instruction = " ".join(p.text.strip() for p in parts if isinstance(p, TextPart)).strip()
    if not instruction:
        raise ServingError(400, "the user message has no instruction text", "messages")
    where, part = f"messages[{turn}].content[{audio[0][0]}]", audio[0][1]
    waveform = _decode(part, where, featurizer.sampling_rate)
    seconds = waveform.numel() / featurizer.sampling_rate
    if seconds > config.max_audio_seconds:
        raise ServingError(
            400,
            f"{where}: audio is {seconds:.1f} s long; this server accepts up to "
            f"{config.max_audio_seconds:g} s",
            where,
            "audio_too_long",
        )
    features, length = featurizer(waveform)
    return Job(features, length, instruction, _settings(request, config))


def _decode(part: AudioPart, where: str, sampling_rate: int) -> torch.Tensor:
    try:
        data = base64.b64decode(part.input_audio.data, validate=True)
    except (binascii.Error, ValueError):
        raise ServingError(400, f"{where}: input_audio.data is not base64", where) from None
    if not data:
        raise ServingError(400, f"{where}: input_audio.data is empty", where, "empty_audio")
    try:
        return decode_audio(data, sampling_rate, name=f"{where} ({part.input_audio.format})")
    except AudioError as error:
        raise ServingError(400, str(error), where, error.reason) from None


def _settings(request: ChatCompletionRequest, config: ServeConfig) -> GenerationSettings:
    max_tokens = request.max_completion_tokens or request.max_tokens or config.default_max_tokens
    if max_tokens > config.max_tokens:
        raise ServingError(
            400, f"max_tokens {max_tokens} is over this server's {config.max_tokens}", "max_tokens"
        )
    return GenerationSettings(
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=request.stop_strings(),
    )
