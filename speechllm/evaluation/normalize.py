"""English text normalisation applied before scoring.

WER punishes a model for writing "21" where the reference says "twenty one", or for a
capital letter or a full stop, none of which is a recognition error. Both sides of every
comparison go through the same function, so the choice of canonical form only has to be
consistent, not linguistically perfect. Raw (unnormalised) scores are reported alongside.
"""

from __future__ import annotations

import re
import string

from num2words import num2words

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
