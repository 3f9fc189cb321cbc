"""Who speaks and how: eSpeak accents, voice variants with gender labels, and prosody presets
that stand in for emotions.

A voice is an accent (eSpeak language) plus a variant (``en-us+f3``). Variants are held out
as a whole: a test variant is heard in no training utterance, under any accent, so test
scores measure generalisation to new speakers while every accent and gender stays covered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from speechllm.synth.espeak import Prosody

ACCENTS: dict[str, str] = {
    "american": "en-us",
    "new_york": "en-us-nyc",
    "scottish": "en-gb-scotland",
    "caribbean": "en-029",
    "lancastrian": "en-gb-x-gbclan",
    "west_midlands": "en-gb-x-gbcwmd",
    "received_pronunciation": "en-gb-x-rp",
}
"""Accent label -> eSpeak language. Plain ``en`` is left out: it is nearly ``en-gb-x-rp``."""

# Variants from espeak-ng-data/voices/!v whose voice file declares the gender (or, for the
# klatt family, uses eSpeak's default male pitch). Variants that clip at normal volume
# (Marco, antonio, Jacky, ...) and whispering or robotic ones are left out.
FEMALE = (
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Alicia",
    "Andrea",
    "Annie",
    "anika",
    "aunty",
    "belinda",
    "linda",
    "steph",
    "steph2",
    "steph3",
    "grandma",
)
MALE = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "Andy",
    "Denis",
    "Diogo",
    "Henrique",
    "Hugo",
    "Lee",
    "michel",
    "miguel",
    "sandro",
    "travis",
    "victor",
    "croak",
)
KLATT = (
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "klatt6",
    "adam",
    "benjamin",
    "david",
    "edward",
    "edward2",
    "mike2",
    "Reed",
)
"""Male variants rendered by the Klatt synthesiser, which sounds unlike the default one: a
Klatt voice is unrecognisable to a model that never heard one, so each split gets some."""
VARIANT_GROUPS: dict[str, tuple[str, ...]] = {"female": FEMALE, "male": MALE, "klatt": KLATT}
GENDERS = ("female", "male")

STYLES: dict[str, Prosody] = {
    "neutral": Prosody(rate=170, pitch=50, range=50, volume=50),
    "happy": Prosody(rate=195, pitch=68, range=85, volume=58),
    "sad": Prosody(rate=130, pitch=32, range=12, volume=34),
    "angry": Prosody(rate=205, pitch=55, range=70, volume=66),
    "calm": Prosody(rate=150, pitch=45, range=30, volume=44),
}
"""Speaking-style presets for ``er``: a prosody proxy for emotion, not acted emotion."""


@dataclass(frozen=True)
class Voice:
    accent: str
    variant: str

    @property
    def name(self) -> str:
        """The eSpeak voice name, e.g. ``en-us+f3``."""
        return f"{ACCENTS[self.accent]}+{self.variant}"

    @property
    def gender(self) -> str:
        return "female" if self.variant in FEMALE else "male"


def split_variants(seed: int, heldout_per_group: int) -> dict[str, dict[str, tuple[str, ...]]]:
    """Hold out ``heldout_per_group`` variants of each group for the test split.

    Returns:
        ``{"train": {group: variants}, "test": {group: variants}}``; dev uses train's.
    """
    rng = random.Random(seed)
    split: dict[str, dict[str, tuple[str, ...]]] = {"train": {}, "test": {}}
    for group, variants in VARIANT_GROUPS.items():
        if not 0 < heldout_per_group < len(variants):
            raise ValueError(f"heldout_per_group must be in [1, {len(variants) - 1}]")
        heldout = set(rng.sample(variants, heldout_per_group))
        split["test"][group] = tuple(v for v in variants if v in heldout)
        split["train"][group] = tuple(v for v in variants if v not in heldout)
    return split


def jitter(style: str, rng: random.Random) -> Prosody:
    """The style's preset, nudged so that a style is a region of prosody, not one point."""
    base = STYLES[style]
    return Prosody(
        rate=round(base.rate * rng.uniform(0.92, 1.08)),
        pitch=base.pitch + rng.randint(-5, 5),
        range=min(100, max(0, base.range + rng.randint(-5, 5))),
        volume=round(base.volume * rng.uniform(0.92, 1.08)),
    )


def sample_voice(
    variants: dict[str, tuple[str, ...]], rng: random.Random, gender: str | None = None
) -> Voice:
    """A random accent and variant, the gender balanced (a quarter of male voices Klatt)."""
    gender = gender or rng.choice(GENDERS)
    if gender == "female":
        pool = variants["female"]
    else:
        pool = variants["klatt"] if rng.random() < 0.25 else variants["male"]
    return Voice(rng.choice(sorted(ACCENTS)), rng.choice(pool))
