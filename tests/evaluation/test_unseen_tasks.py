"""Unseen tasks: each checker on hand-written answers, references from transcripts, no wording
shared with a trained template, and the whole path through speechllm-eval on a tiny model."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from speechllm.cli.eval import run
from speechllm.config import ConfigError, compose
from speechllm.data.instructions import SPLITS, write_heldout_copy
from speechllm.data.manifest import ManifestEntry
from speechllm.evaluation.unseen_tasks import (
    UNSEEN_TASKS,
    first_word_reference,
    first_word_scores,
    question_reference,
    question_scores,
    recordings,
    repeats,
    reply_scores,
    spoken_number,
    summary_scores,
    transcript_words,
    unseen_tasks_section,
    word_count_reference,
    word_count_scores,
    words,
    yes_no,
)
from speechllm.models.tiny import save_tiny_export
from speechllm.testing import write_tiny_manifest


def test_word_count_reads_digits_and_words() -> None:
    assert word_count_reference("Where did I leave my keys?", {}) == 6
    assert word_count_reference("i was born in 21", {}) == 6  # "twenty one", as spoken
    assert word_count_reference("  ", {}) is None
    assert spoken_number("7") == 7
    assert spoken_number("Seven.") == 7
    assert spoken_number("There are twenty-one words.") == 21
    assert spoken_number("I count 12 words") == 12
    assert spoken_number("three or four") == 3  # the first number
    assert spoken_number("a few") is None
    scores = word_count_scores(["six", "6 words", "nine", "many"], [6, 6, 6, 6])
    assert scores["accuracy"] == 50.0
    assert scores["answered"] == 75.0
    assert scores["mae"] == 1.0  # (0 + 0 + 3) / 3: the answer without a number left out
    assert "mae" not in word_count_scores(["many"], [6])


def test_question_reference_from_meta_kind_or_the_last_mark() -> None:
    # the synthetic benchmark's transcripts are unpunctuated; its lines say the sentence's kind
    assert question_reference("where did i leave my keys", {"kind": "question"}) == "yes"
    assert question_reference("can you turn on the lights please", {"kind": "command"}) == "no"
    assert question_reference("Where did I leave my keys?", {}) == "yes"
    assert question_reference("I left my keys.", {}) == "no"
    assert question_reference("Stop!", {}) == "no"
    assert question_reference("i left my keys", {}) is None  # cannot tell: not scored


def test_question_answers_yes_no_or_malformed() -> None:
    assert yes_no("Yes, they are.") == "yes"
    assert yes_no("NO") == "no"
    assert yes_no("The speaker is not asking") == ""
    assert yes_no("") == ""
    scores = question_scores(["yes", "No.", "no", "maybe"], ["yes", "no", "yes", "no"])
    assert scores["accuracy"] == 50.0
    assert scores["uar"] == 50.0  # yes: 1 of 2, no: 1 of 2
    assert scores["answered"] == 75.0
    always_no = question_scores(["no"] * 4, ["yes", "no", "no", "no"])
    assert always_no["accuracy"] == 75.0 and always_no["uar"] == 50.0


def test_first_word_is_a_normalised_exact_match() -> None:
    assert first_word_reference("Can I bring my glasses?", {}) == "can"
    assert first_word_reference("", {}) is None
    references = ["can", "can", "can", "can", "twenty"]
    answers = ["Can.", '"can"', "The first word is can", "", "20"]
    # "20" is spelled out like a transcript's digits would be
    assert first_word_scores(answers, references)["accuracy"] == 60.0


def test_three_word_summary_format_and_precision() -> None:
    transcript = transcript_words("The train to Paris leaves at three.", {})
    refs = [transcript] * 4
    answers = ["Train to Paris", "Paris train departure", "A train leaves Paris at three", ""]
    scores = summary_scores(answers, refs)
    assert scores["three_words"] == 50.0  # the first two
    # per answer: 3/3, 2/3, 5/6, 0 (empty)
    assert scores["precision"] == pytest.approx(100 * (1 + 2 / 3 + 5 / 6 + 0) / 4)


def test_a_reply_is_kept_and_checked_only_for_repeating() -> None:
    transcript = words("where did i leave my keys")
    assert repeats(words("Where did I leave my keys?"), transcript)
    assert repeats(words("my keys"), transcript)  # a piece of it
    assert repeats(words("You said: where did i leave my keys"), transcript)
    assert not repeats(words("Did you check your coat pocket?"), transcript)
    assert not repeats([], transcript)
    answers = ["where did i leave my keys", "Check the kitchen.", "", "keys"]
    scores = reply_scores(answers, [transcript] * 4)
    assert scores == {"repeats": 50.0, "empty": 25.0}


def _templates() -> list[tuple[str, str]]:
    folder = resources.files("speechllm.data.instructions")
    found = []
    for path in folder.iterdir():
        if path.name.endswith(".yaml"):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            found += [(path.name, t) for split in SPLITS for t in data[split]]
    return found


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", re.sub(r"\{\w+\}", " ", text.lower())))


def test_no_instruction_overlaps_a_trained_template() -> None:
    """Neither equal to nor inside any packaged template (seen or held-out), nor the other way
    round, and under half its words shared (Jaccard) with the closest one."""
    templates = _templates()
    assert len(templates) > 100 and len({t.name for t in UNSEEN_TASKS}) == len(UNSEEN_TASKS)
    for task in UNSEEN_TASKS:
        ours = " ".join(words(task.instruction))
        mine = _words(task.instruction)
        for name, template in templates:
            theirs = " ".join(words(re.sub(r"\{\w+\}", " ", template)))
            assert ours not in theirs and theirs not in ours, (task.name, name, template)
            shared = len(mine & _words(template)) / len(mine | _words(template))
            assert shared < 0.5, (task.name, name, template, shared)


def _asr(line_id: str, audio: str, target: str, **meta) -> ManifestEntry:
    return ManifestEntry(line_id, audio, "asr", target, 1.0, meta=meta)


def test_recordings_are_each_asr_recording_once_up_to_the_limit() -> None:
    entries = [
        _asr("a-asr", "/a.flac", "one"),
        ManifestEntry("a-gr", "/a.flac", "gr", "male", 1.0),
        _asr("b-asr", "/b.flac", "two"),
        _asr("a-asr-heldout", "/a.flac", "one"),  # the held-out copy: the same recording
        _asr("c-asr", "/c.flac", "three"),
    ]
    assert [e.id for e in recordings(entries, None)] == ["a-asr", "b-asr", "c-asr"]
    assert [e.id for e in recordings(entries, 2)] == ["a-asr", "b-asr"]


def test_section_without_examples_has_no_answer_table() -> None:
    unseen = {
        "n": 1,
        "tasks": {"reply": {"instruction": "Say?", "primary": "repeats", "n": 1, "repeats": 0.0}},
        "answers": [{"id": "a", "transcript": "hi | there", "reply": "hello\nyou"}],
    }
    assert "| transcript |" not in unseen_tasks_section(unseen, examples=0)
    assert "| hi / there | hello you |" in unseen_tasks_section(unseen)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("unseen")
    test = write_tiny_manifest(root / "data", 6, tasks=("asr", "ic"))
    return save_tiny_export(root / "export"), test, write_heldout_copy(test, root / "heldout.jsonl")


def test_speechllm_eval_reports_unseen_tasks_apart(tiny, tmp_path: Path) -> None:
    export, test, heldout = tiny
    cfg = compose(
        config_name="eval",
        overrides=[f"checkpoint={export}", f"manifest=[{test},{heldout}]", f"out={tmp_path}",
                   "limit=2", "tasks=[ic]", "unseen=2", "num_workers=0", "device=cpu",
                   "decoding.max_new_tokens=4"],
    )  # fmt: skip
    metrics = run(cfg)
    assert metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"ic"}  # the seen/held-out tables: trained tasks only
    unseen = metrics["unseen_tasks"]
    # ASR lines of all the manifests' lines (tasks= and limit= do not apply), each recording
    # once (the held-out copy repeats them), the first unseen=2
    asr = [json.loads(line) for line in test.read_text().splitlines()]
    asr = [line for line in asr if line["task"] == "asr"]
    assert unseen["n"] == 2
    assert [a["id"] for a in unseen["answers"]] == [line["id"] for line in asr[:2]]
    assert [a["transcript"] for a in unseen["answers"]] == [line["target"] for line in asr[:2]]
    assert list(unseen["tasks"]) == [task.name for task in UNSEEN_TASKS]
    for task in UNSEEN_TASKS:
        scores = unseen["tasks"][task.name]
        assert scores["instruction"] == task.instruction and scores["primary"] == task.primary
        # tiny transcripts are unpunctuated and carry no meta.kind: is_question cannot be scored
        if task.name == "is_question":
            assert scores["n"] == 0 and task.primary not in scores
        else:
            assert scores["n"] == 2 and 0.0 <= scores[task.primary] <= 100.0
        assert all(isinstance(a[task.name], str) for a in unseen["answers"])
    report = (tmp_path / "report.md").read_text()
    section = report.split("## Unseen tasks (instructions for tasks never trained)")[1]
    assert "## Seen vs held-out instructions" in report.split("## Unseen tasks")[0]
    assert all(task.instruction in section for task in UNSEEN_TASKS)


def test_unseen_needs_asr_lines_and_a_number(tiny, tmp_path: Path) -> None:
    export, _, _ = tiny
    only_ic = write_tiny_manifest(tmp_path / "ic", 2, tasks=("ic",))
    common = [f"checkpoint={export}", f"out={tmp_path / 'out'}", "num_workers=0", "device=cpu"]
    with pytest.raises(ValueError, match="have none"):
        run(compose(config_name="eval", overrides=[*common, f"manifest={only_ic}", "unseen=3"]))
    with pytest.raises(ConfigError, match="number of recordings"):
        run(compose(config_name="eval", overrides=[*common, f"manifest={only_ic}", "unseen=true"]))
    with pytest.raises(ConfigError, match="give manifest"):
        run(compose(config_name="eval", overrides=[*common, "benchmark=slurp", "unseen=3"]))
