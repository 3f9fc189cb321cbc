"""What a server allows (:class:`ServeConfig`) and what one request asks for
(:class:`GenerationSettings`)."""

from __future__ import annotations

from dataclasses import dataclass

GREEDY_BELOW = 1e-5
"""A ``temperature`` under this decodes greedily (vLLM's rule): dividing logits by 1e-300 gives
inf and NaN probabilities, and anything this close to 0 is greedy in effect anyway."""
MAX_STOP_STRINGS = 4
"""OpenAI's limit on ``stop`` sequences."""
MAX_STOP_CHARS = 256
"""Longest stop string; a stream holds back up to this many characters while it may be one."""


@dataclass(frozen=True)
class ServeConfig:
    """Batching, and the limits that turn oversized or slow requests into a 4xx or a closed
    socket instead of an outage. Every limit has a ``speechllm-serve`` flag (README, Serving)."""

    max_batch_size: int = 8
    """Most requests decoded together; 1 turns batching off."""
    max_wait_ms: float = 10.0
    """How long the first request of a batch waits for others. Requests that arrive while a
    batch decodes join the next one without waiting, so under load batches fill by themselves
    and this only costs latency when the server is nearly idle."""
    max_audio_seconds: float = 30.0
    """Longest recording accepted (after decoding)."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body (base64 audio is 4/3 of the file)."""
    max_tokens: int = 512
    """Largest ``max_tokens`` a request may ask for."""
    default_max_tokens: int = 128
    """``max_tokens`` when a request gives none."""
    max_prompt_tokens: int = 1024
    """Most text tokens in a prompt (the model's template plus the instruction; the audio is
    bounded by ``max_audio_seconds``). Longer instructions are refused before they reach the
    generation thread, where one 100k-character prompt held every other request for minutes."""
    api_key: str | None = None
    """Bearer token every route but ``/health`` and the playground page requires."""
    docs: bool = False
    """Serve ``/docs``, ``/redoc`` and ``/openapi.json`` (off: they map the API for anyone)."""
    max_connections: int = 128
    """Open connections plus running requests before uvicorn answers 503."""
    keep_alive_s: int = 5
    """How long an idle keep-alive connection stays open."""
    read_timeout_s: float = 30.0
    """Time a client has to send a whole request (headers and body) once its connection is
    open or idle: a slow-loris client that trickles headers is disconnected after it."""
    max_header_bytes: int = 16 * 1024
    """Largest request line plus headers (h11's incomplete-event limit)."""
    shutdown_timeout_s: float = 10.0
    """On SIGTERM, how long requests in flight may finish before they are abandoned (each
    running row then stops at its next token)."""

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_body_bytes < 1:
            raise ValueError("max_batch_size and max_body_bytes must be >= 1")
        if self.max_wait_ms < 0 or self.max_audio_seconds <= 0:
            raise ValueError("max_wait_ms must be >= 0 and max_audio_seconds > 0")
        if not 1 <= self.default_max_tokens <= self.max_tokens:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) must be in 1..max_tokens "
                f"({self.max_tokens})"
            )
        if min(self.max_prompt_tokens, self.max_connections, self.max_header_bytes) < 1:
            raise ValueError("max_prompt_tokens, max_connections and max_header_bytes must be >= 1")
        if min(self.keep_alive_s, self.read_timeout_s, self.shutdown_timeout_s) <= 0:
            raise ValueError("keep_alive_s, read_timeout_s and shutdown_timeout_s must be > 0")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty (None turns it off)")


@dataclass(frozen=True)
class GenerationSettings:
    """One request's decoding settings; requests with equal settings share a ``generate`` call.

    ``temperature == 0`` is greedy decoding, whose answer in a batch equals the answer alone
    (rows are left-padded and positions come from the attention mask). Stop strings are not
    handed to Hugging Face (its ``stop_strings`` tables cost vocabulary x stop length in
    Python, seconds per new set): rows are checked on their decoded text (``serving.stopping``).
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    def generate_kwargs(self) -> dict[str, object]:
        """The Hugging Face ``generate`` arguments."""
        kwargs: dict[str, object] = {"max_new_tokens": self.max_tokens}
        if self.temperature >= GREEDY_BELOW:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        return kwargs

    def cut(self, text: str) -> tuple[str, bool]:
        """``text`` up to its first stop string (excluded, as OpenAI does) and whether one
        was found."""
        found = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        return (text[: min(found)], True) if found else (text, False)
