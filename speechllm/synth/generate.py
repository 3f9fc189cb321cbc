"""Generate the synthetic benchmark: plan every split, synthesise the audio (resumably, in a
process pool), then write the manifests and the dataset card.

Output layout::

    out/
      train.jsonl  dev.jsonl  test.jsonl  test_heldout_instructions.jsonl
      README.md    wavs/<split>-<index>.flac
      domain_text.txt   (``domain: clinical`` only) step one's text corpus, train split only
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from speechllm.data.instructions import heldout_line
from speechllm.synth.card import write_card
from speechllm.synth.clinical import plan_clinical_split, write_corpus
from speechllm.synth.grammar import SENTENCE_KINDS
from speechllm.synth.plan import SPLITS, Item, SplitSpec, plan_split
from speechllm.synth.render import write_item
from speechllm.synth.voices import split_variants

HELDOUT_MANIFEST = "test_heldout_instructions"
DOMAINS = {"general": plan_split, "clinical": plan_clinical_split}
CORPUS = "domain_text.txt"


@dataclass
class SynthConfig:
    """Everything that determines the benchmark; equal configs give identical bytes."""

    out: str
    """Output folder."""
    seed: int = 0
    preset: str = "custom"
    """Name recorded in the dataset card."""
    n_train: int = 5000
    """Audio files per split (each yields several task lines)."""
    n_dev: int = 300
    n_test: int = 300
    domain: str = "general"
    """``general`` (the multitask benchmark) or ``clinical`` (dictations, :mod:`.clinical`)."""
    text_lines: int = 0
    """Sentences in ``domain_text.txt``, the domain text corpus (clinical domain only)."""
    workers: int = 2
    """Synthesis processes; 1 synthesises in this process."""
    sentence_mix: dict[str, float] = field(
        default_factory=lambda: {
            "command": 0.35,
            "statement": 0.25,
            "question": 0.12,
            "number": 0.12,
            "opinion": 0.16,
        }
    )
    """Share of single-speaker utterances per sentence kind."""
    matching_style_prob: float = 0.5
    """Chance that an opinion (``asc``) is spoken in a style matching its sentiment; the rest
    take a random style, so sentiment must be read from the words."""
    two_turn_frac: float = 0.1
    """Share of two-turn utterances (for ``sc``): half one voice, half two."""
    nonspeech_frac: float = 0.08
    """Share of non-speech clips (for ``sns``)."""
    overlap_prob: float = 0.3
    """Chance that two voices overlap instead of pausing between turns."""
    noise_prob: float = 0.3
    """Chance that speech gets additive noise."""
    snr_db: tuple[float, float] = (5.0, 30.0)
    """Range the noise SNR is drawn from, in dB."""
    heldout_variants: int = 2
    """Voice variants per group (female, male, klatt) heard only in test."""
    dev_sentences: float = 0.1
    """Share of the sentence space reserved for dev."""
    test_sentences: float = 0.1
    """Share of the sentence space reserved for test."""

    def __post_init__(self) -> None:
        self.snr_db = tuple(self.snr_db)
        self.sentence_mix = dict(self.sentence_mix)
        if min(self.n_train, self.n_dev, self.n_test) < 1:
            raise ValueError("n_train, n_dev and n_test must be >= 1")
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}; use one of {sorted(DOMAINS)}")
        if self.text_lines and self.domain == "general":
            raise ValueError("text_lines needs a domain with a text corpus (clinical)")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if unknown := set(self.sentence_mix) - set(SENTENCE_KINDS):
            raise ValueError(f"sentence_mix has unknown kinds {unknown}; use {SENTENCE_KINDS}")
        if not any(w > 0 for w in self.sentence_mix.values()):
            raise ValueError("sentence_mix needs a positive weight")
        if self.two_turn_frac + self.nonspeech_frac >= 1:
            raise ValueError("two_turn_frac + nonspeech_frac must leave single utterances")
        for name in (
            "two_turn_frac",
            "nonspeech_frac",
            "overlap_prob",
            "noise_prob",
            "matching_style_prob",
        ):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1]")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"snr_db must be (low, high), got {self.snr_db}")
        if not (
            self.dev_sentences > 0
            and self.test_sentences > 0
            and self.dev_sentences + self.test_sentences < 1
        ):
            raise ValueError("dev_sentences and test_sentences must be > 0 and sum below 1")

    @classmethod
    def from_hydra(cls, cfg: Mapping[str, Any]) -> SynthConfig:
        """Flatten the Hydra config: ``preset`` gives the sizes, top-level keys override."""
        known = {f.name for f in fields(cls)} - {"preset"}
        preset = dict(cfg["preset"])
        overrides = {k: v for k, v in dict(cfg).items() if k in known and v is not None}
        values = {k: v for k, v in preset.items() if k in known}
        return cls(**{**values, **overrides}, preset=preset["name"])


@dataclass(frozen=True)
class SynthReport:
    """What a run did: counts and timing, for the CLI and for tests."""

    items: dict[str, int]
    lines: dict[str, int]
    written: int
    skipped: int
    seconds: float
    audio_hours: float


def _specs(cfg: SynthConfig) -> list[SplitSpec]:
    variants = split_variants(cfg.seed, cfg.heldout_variants)
    sizes = {"train": cfg.n_train, "dev": cfg.n_dev, "test": cfg.n_test}
    return [
        SplitSpec(
            split,
            sizes[split],
            variants["test" if split == "test" else "train"],
            cfg.sentence_mix,
            cfg.two_turn_frac,
            cfg.nonspeech_frac,
            cfg.overlap_prob,
            cfg.noise_prob,
            cfg.snr_db,
            cfg.matching_style_prob,
        )
        for split in SPLITS
    ]


def _write(args: tuple[Item, str, int]) -> tuple[float, bool]:
    return write_item(*args)


def _synthesise(items: list[Item], cfg: SynthConfig) -> list[tuple[float, bool]]:
    jobs = [(item, cfg.out, cfg.seed) for item in items]
    progress = {"total": len(jobs), "desc": "synthesising", "unit": "utt"}
    if cfg.workers == 1:
        return [_write(job) for job in tqdm(jobs, **progress)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(cfg.workers, context) as pool:
        return list(tqdm(pool.map(_write, jobs, chunksize=16), **progress))


def _write_jsonl(lines: list[dict[str, Any]], path: Path) -> None:
    """Write atomically, so readers never see a half-written manifest."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    os.replace(tmp, path)


def plan(cfg: SynthConfig) -> dict[str, list[Item]]:
    """Each split's items (sentences, voices, manifest lines) without any audio: seconds, where
    rendering them takes minutes."""
    return {
        spec.name: DOMAINS[cfg.domain](spec, cfg.seed, cfg.dev_sentences, cfg.test_sentences)
        for spec in _specs(cfg)
    }


def generate(cfg: SynthConfig | Mapping[str, Any]) -> SynthReport:
    """Build the benchmark into ``cfg.out``; finished audio files are reused.

    Args:
        cfg: A :class:`SynthConfig`, or the composed Hydra config (``conf/synth.yaml``).

    Returns:
        Counts and timing of the run.
    """
    if not isinstance(cfg, SynthConfig):
        cfg = SynthConfig.from_hydra(cfg)
    start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    plans = plan(cfg)
    items = [item for split in SPLITS for item in plans[split]]
    results = _synthesise(items, cfg)
    durations = {
        item.id: round(duration, 3) for item, (duration, _) in zip(items, results, strict=True)
    }
    manifests = {
        split: [
            {**line, "duration": durations[item.id]} for item in plans[split] for line in item.lines
        ]
        for split in SPLITS
    }
    manifests[HELDOUT_MANIFEST] = [heldout_line(line) for line in manifests["test"]]
    for name, lines in manifests.items():
        _write_jsonl(lines, out / f"{name}.jsonl")
    if cfg.text_lines:
        write_corpus(out / CORPUS, cfg.text_lines, cfg.seed, cfg.dev_sentences, cfg.test_sentences)
    write_card(
        out / "README.md", asdict(cfg), manifests, split_variants(cfg.seed, cfg.heldout_variants)
    )
    skipped = sum(skip for _, skip in results)
    return SynthReport(
        items={split: len(plans[split]) for split in SPLITS},
        lines={name: len(lines) for name, lines in manifests.items()},
        written=len(results) - skipped,
        skipped=skipped,
        seconds=time.perf_counter() - start,
        audio_hours=sum(durations.values()) / 3600,
    )
