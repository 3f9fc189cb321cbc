"""Shared pieces of the synthetic_tiny demo: utterance grouping, noisy text forms, and the
encoder whose hidden-state cache is shared by every task line of one audio file.

The synthetic benchmark gives each audio file several manifest lines (``train-000123-asr``,
``train-000123-gr``, ...). ``AudioEncoder``'s cache is keyed by line id, so every line would be
encoded (and stored) again; :class:`UtteranceCachedEncoder` keys it by utterance instead.
"""

from __future__ import annotations

import random
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # so Hydra can locate ``recipes.synthetic_tiny.common``
    sys.path.insert(0, str(REPO))

from speechllm.data.manifest import ManifestEntry, read_manifests  # noqa: E402
from speechllm.models.encoder import AudioEncoder  # noqa: E402

UTTERANCE_ID = re.compile(r"^[^-]+-\d+")
"""``train-000123`` in ``train-000123-st-es``: the synthetic benchmark's utterance id."""

CTC_CHARS = " abcdefghijklmnopqrstuvwxyz'"
"""The encoder's CTC alphabet (index 0 is blank, then these characters)."""

PARALINGUISTIC = ("ac", "gr", "er", "sc", "sns")
"""Utterance-level tasks the encoder gets auxiliary heads for (train labels only)."""


def utterance_key(line_id: str) -> str:
    """The utterance a manifest line belongs to (the line id itself if it has no such prefix)."""
    match = UTTERANCE_ID.match(line_id)
    return match.group(0) if match else line_id


class UtteranceCachedEncoder(AudioEncoder):
    """``AudioEncoder`` whose hidden-state cache is keyed by utterance, not by manifest line.

    Local workaround until the batch carries an audio key (see the recipe README).
    """

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> UtteranceCachedEncoder:
        encoder = AudioEncoder.from_pretrained(name_or_path, **kwargs)
        encoder.__class__ = cls
        return encoder

    def forward(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, keys: list[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys = None if keys is None else [utterance_key(k) for k in keys]
        return super().forward(audio, audio_lengths, keys)


@dataclass
class Utterance:
    """Every training label of one audio file, gathered from its manifest lines."""

    audio: str
    duration: float
    transcript: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    lines: list[ManifestEntry] = field(default_factory=list)


def utterances(manifest: str | Path) -> dict[str, Utterance]:
    """Group a manifest's lines by audio file (an asr line gives the transcript)."""
    grouped: dict[str, Utterance] = {}
    for entry in read_manifests([str(manifest)]):
        utt = grouped.setdefault(entry.audio, Utterance(entry.audio, entry.duration))
        utt.lines.append(entry)
        if entry.task == "asr":
            utt.transcript = entry.target
        elif entry.task in PARALINGUISTIC:
            utt.labels[entry.task] = entry.target
    for utt in grouped.values():  # anything with words is speech, even without an sns line
        if "sns" not in utt.labels and utt.transcript is not None:
            utt.labels["sns"] = "speech"
    return grouped


def label_sets(groups: Iterable[Utterance]) -> dict[str, list[str]]:
    """Sorted label set of each paralinguistic task."""
    found: dict[str, set[str]] = defaultdict(set)
    for utt in groups:
        for task, label in utt.labels.items():
            found[task].add(label)
    return {task: sorted(found[task]) for task in PARALINGUISTIC if found[task]}


LETTERS = "abcdefghijklmnopqrstuvwxyz "


def noisy(text: str, rng: random.Random, rate: float) -> str:
    """``text`` with characters dropped, doubled or substituted, each with chance ``rate``.

    A stand-in for what an imperfect audio front end hands the LLM: the bootstrap LLM learns to
    copy and repair, which is what stage 1 relies on.
    """
    out = []
    for ch in text:
        u = rng.random()
        if u < rate / 3:
            continue
        if u < 2 * rate / 3:
            out.append(ch + ch)
        elif u < rate:
            out.append(rng.choice(LETTERS))
        else:
            out.append(ch)
    return "".join(out)
