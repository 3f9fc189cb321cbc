"""The prompt template: where the audio, the utterance summary and the instruction go.

One parser for every place that lays out a prompt (``SpeechLLM`` splicing embeddings, a text
bootstrap writing the same layout as text), so the layouts cannot drift apart.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

AUDIO = "{audio}"
SUMMARY = "{summary}"


class PromptTemplate:
    """A template with exactly one ``{audio}``, an ``{instruction}`` and at most one
    ``{summary}``, split into text pieces and the slots between them::

        "<audio>{audio}</audio> {instruction}: {summary}"
        pieces: ["<audio>", "</audio> {instruction}: ", ""]   slots: ["{audio}", "{summary}"]

    Args:
        template: the template string (chat markup for instruct models goes in it too, or
            see :meth:`from_chat`).
        chat: the template was rendered by a tokenizer's chat template, so it already holds
            every special token the model expects (its BOS, if any): nothing is prepended.
    """

    def __init__(self, template: str, chat: bool = False) -> None:
        if (
            template.count(AUDIO) != 1
            or template.count(SUMMARY) > 1
            or "{instruction}" not in template
        ):
            raise ValueError(
                "prompt_template needs exactly one {audio}, an {instruction} placeholder and "
                f"at most one {{summary}}, got {template!r}"
            )
        self.template = template
        self.chat = chat

    @classmethod
    def from_chat(cls, tokenizer: Any, user: str, system: str | None = None) -> PromptTemplate:
        """The tokenizer's own chat format around a user turn: ``user`` (with ``{audio}`` and
        ``{instruction}``) as the user's message, after ``system`` if given (else the
        template's default system turn, if it has one), ending with the generation prompt, so
        an instruct model sees the exact format it was tuned on and answers as the assistant.
        """
        return cls(chat_prompt(tokenizer, user, system), chat=True)

    @cached_property
    def _split(self) -> list[str]:
        return re.split(f"({re.escape(AUDIO)}|{re.escape(SUMMARY)})", self.template)

    @property
    def slots(self) -> list[str]:
        """The slots in order: ``{audio}`` and, if placed, ``{summary}``."""
        return self._split[1::2]

    @property
    def has_summary(self) -> bool:
        return SUMMARY in self.template

    def pieces(self, instruction: str) -> list[str]:
        """The text around the slots for ``instruction``: one piece more than slots."""
        # replace, not str.format: chat markup and system prompts may hold other braces
        return [text.replace("{instruction}", instruction) for text in self._split[0::2]]

    def text(self, instruction: str, audio: str, summary: str = "") -> str:
        """The prompt as plain text, with text standing in for the slots (e.g. a transcript for
        the audio: a text-only LLM bootstrap trains on the layout speech prompts will have)."""
        fill = {AUDIO: audio, SUMMARY: summary}
        pieces = self.pieces(instruction)
        return pieces[0] + "".join(fill[s] + p for s, p in zip(self.slots, pieces[1:], strict=True))


def chat_prompt(tokenizer: Any, user: str, system: str | None = None) -> str:
    """``user``'s turn (after ``system``'s, else the chat template's default system turn, if
    any) in the tokenizer's chat template, ending with the generation prompt."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{type(tokenizer).__name__} has no chat template")
    turns = [{"role": "system", "content": system}] if system is not None else []
    turns.append({"role": "user", "content": user})
    return tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
