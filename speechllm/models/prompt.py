"""The prompt template: where the audio, the utterance summary and the instruction go.

One parser for every place that lays out a prompt (``SpeechLLM`` splicing embeddings, a text
bootstrap writing the same layout as text), so the layouts cannot drift apart.
"""

from __future__ import annotations

import re
from functools import cached_property

AUDIO = "{audio}"
SUMMARY = "{summary}"


class PromptTemplate:
    """A template with exactly one ``{audio}``, an ``{instruction}`` and at most one
    ``{summary}``, split into text pieces and the slots between them::

        "<audio>{audio}</audio> {instruction}: {summary}"
        pieces: ["<audio>", "</audio> {instruction}: ", ""]   slots: ["{audio}", "{summary}"]

    Args:
        template: the template string (chat markup for instruct models goes in it too).
    """

    def __init__(self, template: str) -> None:
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
        return [text.format(instruction=instruction) for text in self._split[0::2]]

    def text(self, instruction: str, audio: str, summary: str = "") -> str:
        """The prompt as plain text, with text standing in for the slots (e.g. a transcript for
        the audio: a text-only LLM bootstrap trains on the layout speech prompts will have)."""
        fill = {AUDIO: audio, SUMMARY: summary}
        pieces = self.pieces(instruction)
        return pieces[0] + "".join(fill[s] + p for s, p in zip(self.slots, pieces[1:], strict=True))
