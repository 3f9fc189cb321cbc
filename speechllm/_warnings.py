"""The known-harmless warnings every command would print, silenced in one place.

Each entry names one message (its start, as ``warnings`` matches it) and its category, so a new
warning, or the same words under another category, still shows. Entry points call
:func:`quiet_known_warnings` first thing; library code never does (a notebook keeps its own
filters).

Why each one is harmless here:

- Lightning's litlogger tip: advertising, logged on every ``Trainer``.
- torch's ``LeafSpec`` deprecation: raised inside Lightning's own pytree helper.
- Lightning's "N module(s) in eval mode": the frozen encoder and LLM are in eval mode on purpose.
- torch's mismatched ``key_padding_mask`` / ``attn_mask``: raised inside transformers' WavLM
  attention, which passes a bool padding mask beside a float position bias (same result).
- transformers' ``is_gradient_checkpointing``: peft reads the old name; nothing we call.
- Lightning's "Checkpoint directory ... exists and is not empty": said on every resume, which
  continues in its own folder by design (``resume=auto``).
- Lightning's "Total length of `list` across ranks is zero": a text run without a validation
  file returns no validation batches (an empty list), Lightning's way to skip validation.
"""

from __future__ import annotations

import logging
import warnings

KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"Found \d+ module\(s\) in eval mode at the start of training"),
    (UserWarning, r"Support for mismatched key_padding_mask and attn_mask is deprecated"),
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    (UserWarning, r"Checkpoint directory .* exists and is not empty"),
    (UserWarning, r"Total length of `list` across ranks is zero"),
)
"""(category, start of the message) of each silenced warning."""

KNOWN_LOG_LINES: dict[str, tuple[str, ...]] = {
    "lightning.pytorch.utilities.rank_zero": ("💡 Tip: For seamless cloud logging",),
}
"""Logger name -> starts of the info lines dropped from it (Lightning logs its tip, not warns)."""


class _DropLines(logging.Filter):
    """Drops records whose message starts with one of ``starts``."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_known_warnings() -> None:
    """Silence exactly :data:`KNOWN_WARNINGS` and :data:`KNOWN_LOG_LINES`; idempotent."""
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, starts in KNOWN_LOG_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines(starts))
