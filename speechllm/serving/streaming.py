"""Per-request text of one batched ``generate`` call, while it is decoded.

Hugging Face's text streamers take batch size 1; a batch here mixes streamed and unstreamed
requests, so :class:`BatchStreamer` splits each step's tokens by row and gives each row its own
``TextStreamer`` (whose decoding holds back incomplete characters and words). What a client
sees is kept consistent by :class:`TextSink`: it only ever sends text that extends what it
already sent, holds back a possible start of a stop string, and the final answer completes it,
so the streamed pieces always join to the unstreamed answer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import PreTrainedTokenizerBase, TextStreamer
from transformers.generation.streamers import BaseStreamer

from speechllm.serving.settings import GenerationSettings


class TextSink:
    """One request's streamed text: sends each new suffix to ``send`` (any thread)."""

    def __init__(self, send: Callable[[str], None], settings: GenerationSettings) -> None:
        self.send = send
        self.settings = settings
        self.sent = ""
        self._hold = max((len(s) for s in settings.stop), default=1) - 1

    def offer(self, text: str, final: bool = False) -> None:
        """The row's text so far (``final``: the whole answer, already cut at a stop)."""
        if not final:
            text, stopped = self.settings.cut(text)
            if not stopped and self._hold:
                text = text[: len(text) - self._hold]
        if len(text) > len(self.sent) and text.startswith(self.sent):
            self.send(text[len(self.sent) :])
            self.sent = text


class _Row(TextStreamer):
    """One row's decoding, until its ``eos``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, sink: TextSink) -> None:
        super().__init__(tokenizer, skip_prompt=False, skip_special_tokens=True)
        self.sink = sink
        self.text = ""
        self.done = False

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text += text
        self.sink.offer(self.text)

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.end()


class BatchStreamer(BaseStreamer):
    """Feeds each row's new tokens to its sink; rows without a sink are not decoded."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, eos_token_id: int, sinks: list[TextSink | None]
    ) -> None:
        self.eos = eos_token_id
        self.rows = [None if sink is None else _Row(tokenizer, sink) for sink in sinks]
        self._prompt = True

    def put(self, value: torch.Tensor) -> None:
        if self._prompt:  # generate() first hands over the prompt (or the decoder start token)
            self._prompt = False
            return
        for row, token in zip(self.rows, value.reshape(-1).tolist(), strict=True):
            if row is None or row.done:
                continue
            if token == self.eos:
                row.finish()
            else:
                row.put(torch.tensor([token]))

    def end(self) -> None:
        for row in self.rows:
            if row is not None:
                row.finish()
