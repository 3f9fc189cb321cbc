"""A request -> one :class:`Job` the batcher can run, or a :class:`ServingError` saying what is
wrong with it.

Everything that depends on one request alone (its prompt's length, decoding its audio, its
limits, its features) is checked here, before it joins a batch, so a bad request is refused
with a 4xx and never reaches the batch its neighbours are in: a request's fate never depends on
who it is batched with. The checks run cheapest first; an instruction too long for the prompt
cap is refused by its character count before the tokenizer ever sees it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from speechllm.data.audio import decode_audio
from speechllm.data.errors import AudioError
from speechllm.data.features import Featurizer
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving.schema import AudioPart, ChatCompletionRequest, TextPart
from speechllm.serving.settings import GREEDY_BELOW, GenerationSettings, ServeConfig

log = logging.getLogger(__name__)


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
    text_tokens: int = 0
    """The prompt's text tokens (``usage.prompt_tokens`` adds the audio embeddings)."""


@dataclass(frozen=True)
class Intake:
    """What checking a request needs from the model, gathered once per app.

    Args:
        featurizer: The encoder's feature extractor.
        config: The server's limits.
        prompt_length: Text tokens of an instruction's prompt (``SpeechLLM.prompt_length``).
        audio_positions: LLM audio embeddings an item of a valid length becomes (the encoder's
            and downsampler's length arithmetic); 0 means too short to encode.
        max_instruction_chars: No instruction within ``config.max_prompt_tokens`` is longer:
            the cap times the longest token's text.
    """

    featurizer: Featurizer
    config: ServeConfig
    prompt_length: Callable[[str], int]
    audio_positions: Callable[[int], int]
    max_instruction_chars: int

    @classmethod
    def of(cls, model: SpeechLLM, config: ServeConfig) -> Intake:
        """The intake for ``model``. A vocabulary entry's string is at least as long as the
        text it decodes to (byte-level entries spell each byte as one character), so the
        character bound never refuses a prompt the token cap would take."""
        longest = max(map(len, model.llm.tokenizer.get_vocab()), default=1)
        summary = model.downsampler.summary_tokens

        def audio_positions(length: int) -> int:
            frames = model.encoder.output_lengths(torch.tensor([length]))
            if int(frames) < 1:
                return 0
            return int(model.downsampler.output_lengths(frames)) - summary

        return cls(
            Featurizer.for_encoder(model.encoder),
            config,
            model.prompt_length,
            audio_positions,
            config.max_prompt_tokens * max(longest, 1),
        )

    def job(
        self,
        data: bytes,
        name: str,
        where: str,
        instruction: str,
        settings: GenerationSettings,
        param: str = "messages",
    ) -> Job:
        """Check ``instruction`` against the prompt cap, decode and check ``data`` (an encoded
        audio file), featurize it.

        Raises:
            ServingError: 400, ``context_length_exceeded`` for a long prompt, else naming
                ``where`` the audio came from.
        """
        text_tokens = self._prompt_tokens(instruction, param)
        rate = self.featurizer.sampling_rate
        try:
            # refused from the header, before decoding, when longer than the server takes
            waveform = decode_audio(
                data, rate, name=name, max_seconds=self.config.max_audio_seconds
            )
        except AudioError as error:  # the server's own codes for the limits it documents
            code = {"too_long": "audio_too_long", "too_short": "audio_too_short"}
            raise ServingError(
                400, str(error), where, code.get(error.reason, error.reason)
            ) from None
        except Exception as error:  # the decoders raise many types on hostile bytes
            log.info("undecodable audio %s: %r", name, error)
            message = f"{where}: unreadable audio {name}: {type(error).__name__}"
            raise ServingError(400, message, where, "unreadable") from None
        seconds = waveform.numel() / rate
        limit = self.config.max_audio_seconds
        if seconds > limit:
            message = (
                f"{where}: audio is {seconds:.1f} s long; this server accepts up to {limit:g} s"
            )
            raise ServingError(400, message, where, "audio_too_long")
        features, length = self.featurizer(waveform)
        if self.audio_positions(length) < 1:
            message = (
                f"{where}: audio is {waveform.numel()} samples ({seconds * 1000:.1f} ms) long, too "
                "short for the encoder to produce one frame"
            )
            raise ServingError(400, message, where, "audio_too_short")
        return Job(features, length, instruction, settings, text_tokens)

    def _prompt_tokens(self, instruction: str, param: str) -> int:
        cap = self.config.max_prompt_tokens
        if len(instruction) > self.max_instruction_chars:
            message = (
                f"the instruction has {len(instruction)} characters, more than a prompt of this "
                f"server's maximum of {cap} tokens can hold; shorten it"
            )
            raise ServingError(400, message, param, "context_length_exceeded")
        tokens = self.prompt_length(instruction)
        if tokens > cap:
            message = (
                f"this server's maximum prompt length is {cap} tokens; your instruction "
                f"resulted in {tokens} tokens; shorten it"
            )
            raise ServingError(400, message, param, "context_length_exceeded")
        return tokens


def prepare(request: ChatCompletionRequest, intake: Intake) -> Job:
    """Check ``request`` against the server's limits and featurize its recording.

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
    settings = generation_settings(
        intake.config,
        request.max_completion_tokens or request.max_tokens,
        request.temperature,
        request.top_p,
        request.stop_strings(),
    )
    where, part = f"messages[{turn}].content[{audio[0][0]}]", audio[0][1]
    data = _base64(part, where)
    return intake.job(data, f"{where} ({part.input_audio.format})", where, instruction, settings)


def generation_settings(
    config: ServeConfig,
    max_tokens: int | None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: tuple[str, ...] = (),
) -> GenerationSettings:
    """A request's decoding settings within ``config``; a temperature under
    :data:`GREEDY_BELOW` is greedy (and batches with the greedy requests)."""
    max_tokens = max_tokens or config.default_max_tokens
    if max_tokens > config.max_tokens:
        raise ServingError(
            400, f"max_tokens {max_tokens} is over this server's {config.max_tokens}", "max_tokens"
        )
    greedy = temperature < GREEDY_BELOW
    return GenerationSettings(
        max_tokens=max_tokens,
        temperature=0.0 if greedy else temperature,
        top_p=1.0 if greedy else top_p,
        stop=stop,
    )


def _base64(part: AudioPart, where: str) -> bytes:
    try:
        data = base64.b64decode(part.input_audio.data, validate=True)
    except (binascii.Error, ValueError):
        raise ServingError(400, f"{where}: input_audio.data is not base64", where) from None
    if not data:
        raise ServingError(400, f"{where}: input_audio.data is empty", where, "empty_audio")
    return data
