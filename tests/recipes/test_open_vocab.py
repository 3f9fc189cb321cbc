"""The open-vocabulary check set builds, parses, and stays outside the benchmark: new
sentences, voices and instruction wordings (recipes/synthetic_real/open_vocab.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import soundfile as sf

from speechllm.data.instructions import load_templates
from speechllm.data.manifest import read_manifests
from speechllm.synth import voices

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "recipes" / "synthetic_real" / "open_vocab.py"
MIN_OOV_TOKENS = 0.7
"""Measured 0.78 of word tokens (0.91 of distinct words) against ``grammar_vocabulary()``."""


def _module():
    spec = importlib.util.spec_from_file_location("open_vocab", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


ov = _module()


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z]+", text.lower()))


def test_build_writes_a_parsable_deterministic_manifest(tmp_path: Path) -> None:
    path = ov.build(tmp_path / "a")
    entries = read_manifests([path])
    sentences = ov.load_sentences()
    assert len(entries) == len(sentences) == 60
    assert [e.target for e in entries] == [text for text, _ in sentences]
    for entry in entries:
        assert entry.task == "asr" and entry.instruction in ov.INSTRUCTIONS
        assert entry.target == _normal(entry.target)  # lower case, no punctuation or digits
        assert 4 <= len(entry.target.split()) <= 12
        info = sf.info(str(entry.audio))
        assert info.samplerate == 16000 and info.format == "FLAC"
        assert abs(info.duration - entry.duration) < 1e-3 and entry.duration > 1
    again = ov.build(tmp_path / "b")
    assert again.read_bytes() == path.read_bytes()
    first = (tmp_path / "a" / "wavs" / "openvocab-07.flac").read_bytes()
    assert first == (tmp_path / "b" / "wavs" / "openvocab-07.flac").read_bytes()


def test_voices_are_outside_every_benchmark_variant(tmp_path: Path) -> None:
    used = {v for group in voices.VARIANT_GROUPS.values() for v in group}
    assert set(ov.VARIANTS).isdisjoint(used)
    entries = read_manifests([ov.build(tmp_path)])
    heard = {e.meta["voice"].split("+", 1)[1] for e in entries}
    assert heard == set(ov.VARIANTS)
    benchmark = {f"{accent}+{v}" for accent in voices.ACCENTS.values() for v in used}
    assert not {e.meta["voice"] for e in entries} & benchmark


def test_instructions_are_not_asr_templates() -> None:
    templates = {_normal(t) for split in load_templates("asr").values() for t in split}
    assert len(templates) == 15
    assert len(set(ov.INSTRUCTIONS)) == 6
    assert not {_normal(i) for i in ov.INSTRUCTIONS} & templates


def test_most_words_are_outside_the_grammar_vocabulary() -> None:
    vocabulary = ov.grammar_vocabulary()
    assert {"kitchen", "lights", "twentieth", "absolutely"} <= vocabulary  # it sees the grammar
    tokens, types = ov.oov_share([text for text, _ in ov.load_sentences()], vocabulary)
    assert tokens > MIN_OOV_TOKENS and types > 0.85
