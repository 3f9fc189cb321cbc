"""What ends one row of a batched ``generate`` before its ``eos`` or ``max_tokens``.

Hugging Face checks its stopping criteria after every decoding step and retires each row for
which they return ``True`` (its later tokens are padding, and ``generate`` returns once every
row is retired). :class:`RowStops` is that check for a batch of requests: a row stops at the
next step after its client disconnected or the server began abandoning work, or once its
decoded text holds one of its stop strings. The text is decoded exactly as the final answer is
(``SpeechLLM.decode``), so the row stops where :meth:`GenerationSettings.cut` will cut.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase, StoppingCriteria


class RowStops(StoppingCriteria):
    """Per-row stops for one ``generate`` call.

    Args:
        cancelled: One flag per row, set from the event loop when its client leaves.
        abandon: Set when the server stops waiting for work in flight (shutdown).
        tokenizer: Decodes rows to find ``stop`` strings.
        stop: The batch's stop strings (a batch shares its settings).
        start: Leading ids that are not generated text (1: a seq2seq decoder start token).
    """

    def __init__(
        self,
        cancelled: Sequence[threading.Event],
        abandon: threading.Event,
        tokenizer: PreTrainedTokenizerBase,
        stop: tuple[str, ...] = (),
        start: int = 0,
    ) -> None:
        self.cancelled = list(cancelled)
        self.abandon = abandon
        self.tokenizer = tokenizer
        self.stop = stop
        self.start = start
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **_) -> torch.Tensor:
        self.steps += 1
        done = [self.abandon.is_set() or flag.is_set() for flag in self.cancelled]
        if self.stop:
            texts = self.tokenizer.batch_decode(
                input_ids[:, self.start :], skip_special_tokens=True
            )
            done = [
                d or any(s in text for s in self.stop) for d, text in zip(done, texts, strict=True)
            ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
