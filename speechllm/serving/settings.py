"""What a server allows (:class:`ServeConfig`) and what one request asks for
(:class:`GenerationSettings`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """Batching and the limits that turn oversized requests into a 4xx instead of an outage."""

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


@dataclass(frozen=True)
class GenerationSettings:
    """One request's decoding settings; requests with equal settings share a ``generate`` call.

    ``temperature == 0`` is greedy decoding, whose answer in a batch equals the answer alone
    (rows are left-padded and positions come from the attention mask).
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    def generate_kwargs(self) -> dict[str, object]:
        """The Hugging Face ``generate`` arguments (the tokenizer is added for ``stop``)."""
        kwargs: dict[str, object] = {"max_new_tokens": self.max_tokens}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        if self.stop:
            kwargs["stop_strings"] = list(self.stop)
        return kwargs

    def cut(self, text: str) -> tuple[str, bool]:
        """``text`` up to its first stop string (excluded, as OpenAI does) and whether one
        was found."""
        found = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        return (text[: min(found)], True) if found else (text, False)
