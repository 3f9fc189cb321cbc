"""The open-English ASR training lines (recipes/synthetic_real/varied_asr.py): the committed
sentences are what the filter keeps and stay outside the grammar and the open-vocabulary check,
and they are spoken by the benchmark's training voices only."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import soundfile as sf

from speechllm.data.manifest import read_manifests
from speechllm.synth import voices

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "recipes" / "synthetic_real"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


va, ov = _module("varied_asr"), _module("open_vocab")


def test_keep_takes_a_plain_first_sentence_and_refuses_talk_about_the_request() -> None:
    assert va.keep('"The tutorial was designed to teach the audience. More."') == (
        "The tutorial was designed to teach the audience."
    )
    assert va.keep("That's a delicious chicken sandwich on a brioche bun.") is not None
    refused = [
        'A simple sentence using the word "herbs" is "Herbs"',  # about the request
        "The United States is a sovereign nation with 50 states.",  # digits
        "I'm going for a swim today, so it's gonna be a long day, but I'm pretty",  # cut off
        "A dollar.",  # too short
        "I'm ready to assist. What can I help you with today?",  # about itself
    ]
    assert [va.keep(reply) for reply in refused] == [None] * len(refused)


def test_target_is_the_benchmarks_transcript_form() -> None:
    spoken = "Ava's new vegan food, it's delicious!"
    assert va.target(spoken) == "ava's new vegan food it's delicious"


def test_seed_words_are_whole_words_of_the_vocabulary() -> None:
    vocab = {"Ġkitchen": 0, "ĠKitchen": 1, "Ġcompl": 2, "Ġgarden": 3, "ĠGarden": 4, "kitchen": 5}
    assert va.seed_words(vocab) == ["garden", "kitchen"]


def test_committed_sentences_pass_the_filter_and_stay_outside_grammar_and_check() -> None:
    lines = va.SENTENCES.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(map(va.target, lines))) >= 1000
    assert all(va.keep(line) == line for line in lines)
    check = {va.target(text) for text, _ in ov.load_sentences()}
    assert check.isdisjoint(map(va.target, lines))
    tokens, types = ov.oov_share(map(va.target, lines), ov.grammar_vocabulary())
    assert tokens > 0.4 and types > 0.8  # open English, not the benchmark's few hundred words


def test_build_renders_with_training_voices_only(tmp_path: Path) -> None:
    sentences = tmp_path / "s.txt"
    sentences.write_text("The kettle sang while we waited for the rain.\nWhere did you park?\n")
    path = va.build(tmp_path / "a", path=sentences)
    entries = read_manifests([path])
    assert [(e.task, e.target) for e in entries] == [
        ("asr", "the kettle sang while we waited for the rain"),
        ("asr", "where did you park"),
    ]
    heldout = voices.split_variants(va.BENCHMARK_SEED, va.HELDOUT_VARIANTS)["test"]
    unheard = {v for group in heldout.values() for v in group} | set(ov.VARIANTS)
    for entry in entries:
        assert entry.instruction is None  # prompted with the seen ASR wordings
        assert entry.meta["voice"].split("+")[1] not in unheard
        info = sf.info(str(entry.audio))
        assert info.samplerate == 16000 and abs(info.duration - entry.duration) < 1e-3
    assert va.build(tmp_path / "b", path=sentences).read_bytes() == path.read_bytes()
