"""Plan a split: which audio to make (sentences, voices, styles, noise) and which manifest
lines each audio yields. Planning is cheap and sequential, so it is exactly reproducible;
synthesis then depends only on an item, never on the order items are made in.

Sentences are assigned to splits by a seeded hash of their text, so train, dev and test
never share a sentence however many utterances each draws.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from speechllm.synth.espeak import Prosody
from speechllm.synth.grammar import COMMANDS, Sentence, content_words, sample_sentence
from speechllm.synth.nonspeech import NONSPEECH_KINDS
from speechllm.synth.opinions import MATCHING_STYLES, SENTIMENTS
from speechllm.synth.voices import ACCENTS, GENDERS, STYLES, Voice, jitter, sample_voice

SPLITS = ("train", "dev", "test")
SC_LABELS = ["one", "two"]
SNS_LABELS = ["speech", "non-speech"]


@dataclass(frozen=True)
class Turn:
    """One sentence spoken by one voice."""

    sentence: Sentence
    voice: Voice
    style: str
    prosody: Prosody


@dataclass(frozen=True)
class Item:
    """One audio file and the manifest lines (without ``duration``) it yields."""

    id: str
    turns: tuple[Turn, ...]
    """Empty for non-speech."""
    lines: tuple[dict[str, Any], ...]
    nonspeech: str | None = None
    length_s: float = 0.0
    """Length of non-speech audio."""
    gap_s: float = 0.0
    """Silence between turns; negative values overlap them."""
    snr_db: float | None = None

    @property
    def audio(self) -> str:
        return f"wavs/{self.id}.flac"


@dataclass(frozen=True)
class SplitSpec:
    """How many items of each shape a split gets, and from which pools."""

    name: str
    size: int
    variants: Mapping[str, tuple[str, ...]]
    sentence_mix: Mapping[str, float]
    two_turn_frac: float
    nonspeech_frac: float
    overlap_prob: float
    noise_prob: float
    snr_db: tuple[float, float]
    matching_style_prob: float = 0.5
    """Chance that an opinion is spoken in a style matching its sentiment."""


def sentence_split(text: str, seed: int, dev_frac: float, test_frac: float) -> str:
    """The split a sentence belongs to: a seeded hash, so independent of sampling order."""
    digest = hashlib.sha1(f"{seed}:{text}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test_frac else "dev" if u < test_frac + dev_frac else "train"


class Planner:
    """Draws items for one split; see :func:`plan_split`."""

    def __init__(self, spec: SplitSpec, seed: int, dev_frac: float, test_frac: float) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:{spec.name}")
        self._belongs = lambda text: sentence_split(text, seed, dev_frac, test_frac) == spec.name
        self._kws_yes = True
        self._sns_speech_left = 0

    def sentence(self, kind: str | None = None) -> Sentence:
        mix = self.spec.sentence_mix
        kind = kind or self.rng.choices(list(mix), weights=list(mix.values()))[0]
        while True:  # rejection keeps each split's sentences disjoint; ~1/frac draws
            sentence = sample_sentence(kind, self.rng)
            if self._belongs(sentence.text):
                return sentence

    def turn(self, voice: Voice | None = None) -> Turn:
        voice = voice or sample_voice(self.spec.variants, self.rng)
        style = self.rng.choice(sorted(STYLES))
        sentence = self.sentence()
        if sentence.sentiment is not None and self.rng.random() < self.spec.matching_style_prob:
            style = self.rng.choice(MATCHING_STYLES[sentence.sentiment])
        return Turn(sentence, voice, style, jitter(style, self.rng))

    def snr(self) -> float | None:
        if self.rng.random() >= self.spec.noise_prob:
            return None
        return round(self.rng.uniform(*self.spec.snr_db), 1)

    def items(self) -> list[Item]:
        spec = self.spec
        n_nonspeech = round(spec.size * spec.nonspeech_frac)
        n_two = round(spec.size * spec.two_turn_frac)
        shapes = ["nonspeech"] * n_nonspeech + ["two"] * n_two
        shapes += ["single"] * (spec.size - len(shapes))
        self.rng.shuffle(shapes)
        self._sns_speech_left = n_nonspeech
        build = {"single": self.single, "two": self.two_turn, "nonspeech": self.non_speech}
        return [build[shape](f"{spec.name}-{i:06d}") for i, shape in enumerate(shapes)]

    def single(self, item_id: str) -> Item:
        turn = self.turn()
        item = Item(item_id, (turn,), (), snr_db=self.snr())
        return _with_lines(item, self._speech_lines(item, turn))

    def two_turn(self, item_id: str) -> Item:
        first = self.turn()
        if self.rng.random() < 0.5:  # one speaker, two sentences: same shape as "two"
            second = Turn(self.sentence(), first.voice, first.style, first.prosody)
            count, gap = "one", self.rng.uniform(0.1, 0.6)
        else:
            while (
                voice := sample_voice(self.spec.variants, self.rng)
            ).variant == first.voice.variant:
                pass
            second = self.turn(voice)
            overlap = self.rng.random() < self.spec.overlap_prob
            count = "two"
            gap = -self.rng.uniform(0.1, 0.5) if overlap else self.rng.uniform(0.1, 0.6)
        item = Item(item_id, (first, second), (), gap_s=round(gap, 2), snr_db=self.snr())
        meta = {"voices": [first.voice.name, second.voice.name], "gap_s": item.gap_s}
        return _with_lines(item, [_line(item, "sc", count, labels=SC_LABELS, meta=meta)])

    def non_speech(self, item_id: str) -> Item:
        kind = self.rng.choice(NONSPEECH_KINDS)
        item = Item(item_id, (), (), nonspeech=kind, length_s=round(self.rng.uniform(1, 4), 2))
        line = _line(item, "sns", "non-speech", labels=SNS_LABELS, meta={"kind": kind})
        return _with_lines(item, [line])

    def _speech_lines(self, item: Item, turn: Turn) -> list[dict[str, Any]]:
        s, voice = turn.sentence, turn.voice
        meta = {"voice": voice.name, "style": turn.style, "kind": s.kind, "snr_db": item.snr_db}
        lines = [
            _line(item, "asr", s.text, meta=meta),
            _line(item, "ac", voice.accent, labels=sorted(ACCENTS), meta=meta),
            _line(item, "gr", voice.gender, labels=list(GENDERS), meta=meta),
            _line(item, "er", turn.style, labels=list(STYLES), meta=meta),
        ]
        words = content_words(s.text)
        if words:
            lines.append(_line(item, "kwe", ", ".join(words), meta=meta))
            lines.append(self._kws_line(item, words, meta))
        if s.intent is not None:
            lines.append(_line(item, "ic", s.intent, labels=sorted(COMMANDS), meta=meta))
            slots = "; ".join(f"{name}={value}" for name, value in s.slots) or "none"
            lines.append(_line(item, "sf", slots, meta=meta))
        if s.sentiment is not None:
            lines.append(_line(item, "asc", s.sentiment, labels=list(SENTIMENTS), meta=meta))
        for lang, text in s.translations.items():
            lines.append(_line(item, "st", text, tgt_lang=lang, meta=meta, suffix=lang))
        if self._sns_speech_left > 0:  # as many speech as non-speech lines
            self._sns_speech_left -= 1
            lines.append(_line(item, "sns", "speech", labels=SNS_LABELS, meta=meta))
        return lines

    def _kws_line(self, item: Item, words: list[str], meta: dict[str, Any]) -> dict[str, Any]:
        """Alternate yes and no; a "no" asks for a word of another sentence of this split."""
        answer = "yes" if self._kws_yes else "no"
        self._kws_yes = not self._kws_yes
        if answer == "yes":
            keyword = self.rng.choice(words)
        else:
            while (keyword := self.rng.choice(content_words(self.sentence().text))) in words:
                pass
        return _line(item, "kws", answer, labels=["yes", "no"], meta={**meta, "keyword": keyword})


def _line(
    item: Item,
    task: str,
    target: str,
    *,
    labels: list[str] | None = None,
    tgt_lang: str | None = None,
    meta: dict[str, Any],
    suffix: str = "",
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": f"{item.id}-{task}" + (f"-{suffix}" if suffix else ""),
        "audio": item.audio,
        "task": task,
        "target": target,
        "lang": "en",
    }
    if tgt_lang is not None:
        line["tgt_lang"] = tgt_lang
    if labels is not None:
        line["labels"] = labels
    line["meta"] = {k: v for k, v in meta.items() if v is not None}
    return line


def _with_lines(item: Item, lines: list[dict[str, Any]]) -> Item:
    return replace(item, lines=tuple(lines))


def plan_split(spec: SplitSpec, seed: int, dev_frac: float, test_frac: float) -> list[Item]:
    """All items of one split, reproducible from ``seed`` alone."""
    return Planner(spec, seed, dev_frac, test_frac).items()
