"""The synthetic benchmark at tiny size: generated once per module (a few seconds)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_module

from speechllm.data.manifest import read_manifests
from speechllm.synth import (
    SynthConfig,
    content_words,
    generate,
    sample_sentence,
    split_variants,
)
from speechllm.synth.grammar import COMMANDS
from speechllm.synth.opinions import MATCHING_STYLES, SENTIMENTS
from speechllm.synth.plan import SplitSpec, plan_split
from speechllm.synth.voices import ACCENTS, FEMALE, STYLES, Voice

SPLITS = ("train", "dev", "test", "test_heldout_instructions")
LABELS = {
    "ic": set(COMMANDS),
    "kws": {"yes", "no"},
    "er": set(STYLES),
    "asc": set(SENTIMENTS),
    "sc": {"one", "two"},
    "ac": set(ACCENTS),
    "sns": {"speech", "non-speech"},
    "gr": {"female", "male"},
}


def _tiny(out: Path) -> dict[str, Any]:
    """The shipped Hydra config with the tiny preset, as the CLI would compose it."""
    with initialize_config_module("speechllm.synth.conf", version_base="1.3"):
        cfg = compose("synth", overrides=["preset=tiny", f"out={out}", "workers=1"])
    return dict(cfg)


def _read(root: Path, split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    report = generate(_tiny(root))
    assert report.written == sum(report.items.values()) == 120
    return root


@pytest.fixture(scope="module")
def lines(bench: Path) -> dict[str, list[dict[str, Any]]]:
    return {split: _read(bench, split) for split in SPLITS}


def test_same_seed_same_bytes(bench: Path, tmp_path: Path) -> None:
    cfg = SynthConfig(out=str(tmp_path), seed=0, n_train=80, n_dev=20, n_test=20, workers=1)
    generate(cfg)
    names = sorted(p.name for p in (bench / "wavs").iterdir())
    sample = random.Random(0).sample(names, 12) + ["test-000000.flac"]
    for name in sample:
        assert (bench / "wavs" / name).read_bytes() == (tmp_path / "wavs" / name).read_bytes()
    assert (bench / "train.jsonl").read_bytes() == (tmp_path / "train.jsonl").read_bytes()


def test_more_training_lines_leave_dev_and_test_unchanged(bench: Path, tmp_path: Path) -> None:
    """A larger training split (the demo's, preset=medium n_dev=300 n_test=300) keeps the
    small benchmark's dev and test lines and audio byte for byte, so both score one test set."""
    cfg = SynthConfig(out=str(tmp_path), seed=0, n_train=40, n_dev=20, n_test=20, workers=1)
    generate(cfg)
    for split in ("dev", "test", "test_heldout_instructions"):
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (bench / f"{split}.jsonl").read_bytes()
    for name in {line["audio"] for line in _read(bench, "test") + _read(bench, "dev")}:
        assert (tmp_path / name).read_bytes() == (bench / name).read_bytes()


def test_every_task_with_its_label_set(lines: dict[str, list[dict[str, Any]]]) -> None:
    for split in ("train", "test"):
        by_task: dict[str, list[dict[str, Any]]] = {}
        for line in lines[split]:
            by_task.setdefault(line["task"], []).append(line)
        assert set(by_task) == {
            "asr",
            "st",
            "ic",
            "sf",
            "kws",
            "kwe",
            "er",
            "asc",
            "sc",
            "ac",
            "sns",
            "gr",
        }
        for task, labels in LABELS.items():
            assert all(set(line["labels"]) == labels for line in by_task[task]), task
            assert {line["target"] for line in by_task[task]} <= labels, task
        assert all(line["target"].strip() for line in lines[split])
        assert all("keyword" in line["meta"] for line in by_task["kws"])


def test_train_label_coverage(lines: dict[str, list[dict[str, Any]]]) -> None:
    targets = Counter((line["task"], line["target"]) for line in lines["train"])
    for task in ("er", "asc", "sns", "gr", "kws", "sc"):
        assert {label for t, label in targets if t == task} == LABELS[task], task
    assert len({label for t, label in targets if t == "ac"}) >= 5


POSITIVE = {"love", "loved", "great", "excellent", "wonderful", "amazing", "best", "pleased"}
NEGATIVE = {"hate", "hated", "terrible", "awful", "worst", "refund", "rude", "annoyed"}


def test_opinions_carry_their_sentiment_in_their_words() -> None:
    rng = random.Random(0)
    opinions = [sample_sentence("opinion", rng) for _ in range(400)]
    assert Counter(s.sentiment for s in opinions).keys() == set(SENTIMENTS)
    cues = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": set()}
    for s in opinions:  # no opinion uses another sentiment's words
        words = set(s.text.split())
        assert all(not words & cue for k, cue in cues.items() if k != s.sentiment), s
    for sentiment in ("positive", "negative"):  # and many use their own
        own = [bool(set(s.text.split()) & cues[sentiment]) for s in opinions
               if s.sentiment == sentiment]  # fmt: skip
        assert sum(own) > 0.3 * len(own), sentiment


def test_asc_lines_are_spoken_with_and_without_a_matching_style() -> None:
    spec = SplitSpec(
        "train", 600, split_variants(0, 2)["train"], {"opinion": 1.0}, 0, 0, 0, 0, (5, 30), 0.5
    )
    asc = [line for item in plan_split(spec, 0, 0.1, 0.1) for line in item.lines
           if line["task"] == "asc"]  # fmt: skip
    matching = [line["meta"]["style"] in MATCHING_STYLES[line["target"]] for line in asc]
    # half match by design, and a fifth to two fifths of the random styles match by chance
    assert len(asc) == 600 and 0.55 < sum(matching) / len(asc) < 0.8
    for sentiment in SENTIMENTS:
        styles = {line["meta"]["style"] for line in asc if line["target"] == sentiment}
        assert styles == set(STYLES), sentiment


def test_test_voices_and_sentences_unseen_in_train(lines: dict[str, list[dict[str, Any]]]) -> None:
    def variants(split: str) -> set[str]:
        voices = [line["meta"]["voice"] for line in lines[split] if "voice" in line["meta"]]
        voices += [v for line in lines[split] for v in line["meta"].get("voices", [])]
        return {voice.split("+")[1] for voice in voices}

    def sentences(split: str) -> set[str]:
        return {line["target"] for line in lines[split] if line["task"] == "asr"}

    assert variants("test") and not variants("test") & variants("train")
    assert not variants("test") & variants("dev")
    assert sentences("test") and not sentences("test") & sentences("train")
    assert not sentences("dev") & sentences("test")
    genders = {line["target"] for line in lines["test"] if line["task"] == "gr"}
    assert genders == {"female", "male"}


def test_audio_is_sane(bench: Path, lines: dict[str, list[dict[str, Any]]]) -> None:
    for line in {line["audio"]: line for line in lines["train"] + lines["test"]}.values():
        audio, rate = sf.read(bench / line["audio"], dtype="float32")
        assert rate == 16000 and audio.ndim == 1
        assert 0.5 < len(audio) / rate < 20
        assert abs(len(audio) / rate - line["duration"]) < 1e-3
        assert np.abs(audio).max() < 1.0
        if line["task"] != "sns" or line["target"] == "speech":
            assert np.abs(audio).max() > 0.05, line["id"]


def test_translations_in_spanish_and_german(lines: dict[str, list[dict[str, Any]]]) -> None:
    st = [line for line in lines["train"] if line["task"] == "st"]
    assert Counter(line["tgt_lang"] for line in st) == {"es": len(st) // 2, "de": len(st) // 2}
    assert all(line["target"][0].isupper() and line["target"].endswith(".") for line in st)


def test_grammatical_translations() -> None:
    rng = random.Random(1)
    sentences = [sample_sentence("statement", rng) for _ in range(400)]
    es = " ".join(s.translations["es"] for s in sentences)
    assert " a el " not in f" {es.lower()} " and " de el " not in f" {es.lower()} "
    assert any(
        s.text == "the key is in the kitchen"
        and s.translations
        == {"es": "La llave está en la cocina.", "de": "Der Schlüssel ist in der Küche."}
        for s in [sample_sentence("statement", random.Random(i)) for i in range(3000)]
    )


def test_keyword_spotting_is_balanced_and_correct(lines: dict[str, list[dict[str, Any]]]) -> None:
    asr = {line["audio"]: line["target"] for line in lines["train"] if line["task"] == "asr"}
    kws = [line for line in lines["train"] if line["task"] == "kws"]
    counts = Counter(line["target"] for line in kws)
    assert abs(counts["yes"] - counts["no"]) <= 1
    for line in kws:
        said = line["meta"]["keyword"] in asr[line["audio"]].split()
        assert said == (line["target"] == "yes")


def test_commands_have_slots_and_keywords() -> None:
    rng = random.Random(0)
    commands = [sample_sentence("command", rng) for _ in range(500)]
    assert len({c.intent for c in commands}) >= 10
    assert len({name for c in commands for name, _ in c.slots}) >= 5
    for c in commands:
        words = f" {c.text} "
        assert all(f" {value} " in words for _, value in c.slots)
    assert content_words("set an alarm for seven at the office") == [
        "set",
        "alarm",
        "seven",
        "office",
    ]


def test_gender_labels_follow_the_variant() -> None:
    assert Voice("scottish", "f3").gender == "female" and "f3" in FEMALE
    assert Voice("american", "klatt2").gender == "male"
    assert Voice("caribbean", "m1").name == "en-029+m1"


def test_heldout_instruction_split_mirrors_test(lines: dict[str, list[dict[str, Any]]]) -> None:
    heldout, test = lines["test_heldout_instructions"], lines["test"]
    assert [line["audio"] for line in heldout] == [line["audio"] for line in test]
    assert all(line["meta"]["instruction_split"] == "heldout" for line in heldout)
    assert not {line["id"] for line in heldout} & {line["id"] for line in test}


def test_manifests_read_with_the_data_module(bench: Path) -> None:
    entries = read_manifests([bench / f"{split}.jsonl" for split in SPLITS])
    assert len(entries) == sum(len(_read(bench, split)) for split in SPLITS)
    assert all(Path(entry.audio).exists() for entry in entries)


def test_manifests_pass_speechllm_data_check(bench: Path, capsys) -> None:
    from speechllm.cli.data import check

    assert check([str(bench / f"{split}.jsonl") for split in SPLITS], audio=True) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_rerun_skips_finished_files(bench: Path) -> None:
    wav = bench / "wavs" / "train-000003.flac"
    before = wav.stat().st_mtime_ns
    report = generate(_tiny(bench))
    assert report.skipped == sum(report.items.values()) and report.written == 0
    assert wav.stat().st_mtime_ns == before
    assert "proxy for emotion" in (bench / "README.md").read_text()


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sentence_mix"):
        SynthConfig(out=str(tmp_path), sentence_mix={"poetry": 1.0})
    with pytest.raises(ValueError, match="snr_db"):
        SynthConfig(out=str(tmp_path), snr_db=(30.0, 5.0))
