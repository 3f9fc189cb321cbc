"""Text normalisation applied before scoring, and the choice of normaliser for WER.

WER punishes a model for writing "21" where the reference says "twenty one", or for a
capital letter or a full stop, none of which is a recognition error. Both sides of every
comparison go through the same function. Raw (unnormalised) scores are reported alongside.

A WER is comparable with a published one only after the same normaliser. The Open ASR
Leaderboard, NeMo and Whisper-based papers use Whisper's ``EnglishTextNormalizer`` for English
(numbers written as digits, British spellings made American, fillers dropped) and Whisper's
``BasicTextNormalizer`` for other languages; both come from the ``whisper-normalizer`` package
(the leaderboard's own copy of OpenAI's code, with its ``english.json`` spelling table).
:func:`normalize_text` (numbers spelled out with ``num2words``) stays available as
``speechllm``, e.g. for targets written with numbers as words.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from functools import cache

from num2words import num2words
from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

NORMALIZERS = ("auto", "whisper", "whisper_basic", "speechllm", "none")
"""``whisper``: Whisper's English normaliser; ``whisper_basic``: its language-independent one
(lower case, symbols and bracketed text removed); ``speechllm``: :func:`normalize_text`;
``none``: case and punctuation count; ``auto``: ``whisper`` for English (or an unset
language), ``whisper_basic`` for every other language."""

# Digits with optional thousands separators ("1,000"), decimals ("3.5") and ordinal suffixes
# ("21st"). Anything fancier (dates, times, currency) is left to the punctuation pass.
_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(st|nd|rd|th)?\b")
_NOT_WORD = re.compile(r"[^\w\s']")
# An apostrophe survives only inside a word ("don't"), never as a quote mark.
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def _number_to_words(match: re.Match[str]) -> str:
    integer, fraction, ordinal = match.groups()
    integer = integer.replace(",", "")
    if ordinal and not fraction:
        return num2words(int(integer), to="ordinal")
    return num2words(integer + (fraction or ""))


def normalize_text(text: str) -> str:
    """Map text to a canonical lower-case, unpunctuated form for WER-style comparison.

    Steps: case-fold; spell out numbers with ``num2words`` (cardinals "21" -> "twenty one",
    decimals "3.5" -> "three point five", ordinals "21st" -> "twenty first"; years are read
    as cardinals); turn every other punctuation mark or symbol ("%", "$", "-") into a space,
    keeping apostrophes inside words; collapse whitespace.

    Args:
        text: Raw reference or hypothesis.

    Returns:
        The normalised text; words are separated by single spaces.
    """
    text = text.casefold().replace("\u2019", "'")
    text = _NUMBER.sub(_number_to_words, text)
    text = _STRAY_APOSTROPHE.sub(" ", _NOT_WORD.sub(" ", text))
    return " ".join(text.split())


def normalize_label(text: str) -> str:
    """Canonical form of a class label, so "Happy." from an LLM matches the label "happy".

    Unlike :func:`normalize_text` it keeps inner punctuation, because label sets such as
    SLURP intents (``alarm_set``) use it.

    Args:
        text: A predicted or reference label.

    Returns:
        The case-folded label without surrounding whitespace or punctuation.
    """
    return " ".join(text.casefold().split()).strip(string.punctuation + " ")


@cache
def _whisper_english() -> Callable[[str], str]:
    return EnglishTextNormalizer()


@cache
def _whisper_basic() -> Callable[[str], str]:
    return BasicTextNormalizer()


def resolve_normalizer(name: str, lang: str | None = None) -> str:
    """The concrete normaliser ``name`` means for transcripts in ``lang`` (``auto`` resolved).

    Args:
        name: One of :data:`NORMALIZERS`.
        lang: The transcript's language code (``en``, ``en-US``, ``de``...), if known.
    """
    if name not in NORMALIZERS:
        raise ValueError(f"unknown normalizer {name!r}; use one of {list(NORMALIZERS)}")
    if name != "auto":
        return name
    english = lang is None or lang.lower().split("-")[0].split("_")[0] in ("en", "eng")
    return "whisper" if english else "whisper_basic"


def transcript_normalizer(name: str, lang: str | None = None) -> Callable[[str], str]:
    """The function that normalises transcripts for WER under ``name`` (see :data:`NORMALIZERS`).

    Args:
        name: One of :data:`NORMALIZERS`.
        lang: The transcript's language code, for ``auto``.
    """
    resolved = resolve_normalizer(name, lang)
    if resolved == "whisper":
        return _whisper_english()
    if resolved == "whisper_basic":
        return _whisper_basic()
    if resolved == "speechllm":
        return normalize_text
    return str
