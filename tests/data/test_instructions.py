from __future__ import annotations

import json
import random
import string

import pytest

from speechllm.data.instructions import (
    heldout_line,
    instruction_for,
    load_templates,
    sample_instruction,
    write_heldout_copy,
)
from speechllm.data.manifest import ManifestEntry
from speechllm.tasks import TASKS, TEXT_TASK

REQUIRED = {"kws": {"keyword"}, "st": {"tgt_lang"}}


@pytest.mark.parametrize("task", sorted(set(TASKS) - {TEXT_TASK}))  # text items carry their own
def test_every_task_has_distinct_seen_and_heldout_templates(task: str) -> None:
    templates = load_templates(task)
    seen, heldout = templates["seen"], templates["heldout"]
    assert len(seen) >= 11 and len(heldout) >= 4
    assert len(set(seen) | set(heldout)) == len(seen) + len(heldout)
    for template in seen + heldout:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        assert fields <= {"keyword", "tgt_lang", "labels"}
        assert REQUIRED.get(task, set()) <= fields, template
    # every task can be instructed without a label set in both splits
    for split in ("seen", "heldout"):
        assert any("{labels}" not in t for t in templates[split])


def _entry(**fields) -> ManifestEntry:
    return ManifestEntry(
        **{"id": "u", "audio": "/a.wav", "task": "asr", "target": "t", "duration": 1.0, **fields}
    )


def test_fills_keyword_language_and_labels() -> None:
    rng = random.Random(0)
    kws = {
        instruction_for(_entry(task="kws", meta={"keyword": "lamp"}), "seen", rng)
        for _ in range(50)
    }
    assert all('"lamp"' in text for text in kws) and len(kws) > 5
    st = instruction_for(_entry(task="st", tgt_lang="de"), "heldout", rng)
    assert "German" in st and "{" not in st
    with_labels = {
        instruction_for(_entry(task="er", labels=("happy", "sad")), "seen", rng) for _ in range(200)
    }
    assert any("happy, sad" in text for text in with_labels)
    without = {instruction_for(_entry(task="er"), "seen", rng) for _ in range(200)}
    assert not any("{" in text for text in without)


def test_manifest_instruction_overrides_templates() -> None:
    entry = _entry(instruction="Say it backwards.")
    assert instruction_for(entry, "heldout", random.Random(1)) == "Say it backwards."


def test_splits_are_disjoint_and_seeded() -> None:
    seen = {sample_instruction("asr", random.Random(i)) for i in range(100)}
    heldout = {sample_instruction("asr", random.Random(i), "heldout") for i in range(100)}
    assert not seen & heldout and len(seen) == 11
    assert sample_instruction("ic", random.Random(5)) == sample_instruction("ic", random.Random(5))
    with pytest.raises(ValueError, match="can be filled"):
        sample_instruction("kws", random.Random(0))  # no keyword


def test_a_heldout_copy_keeps_each_line_marks_its_split_and_finds_its_audio(tmp_path) -> None:
    manifest = tmp_path / "data" / "test.jsonl"
    manifest.parent.mkdir()
    line = {"id": "a", "audio": "wavs/a.flac", "task": "asr", "target": "hi", "meta": {"k": 1}}
    manifest.write_text(json.dumps(line) + "\n\n")
    copy = write_heldout_copy(manifest, tmp_path / "elsewhere" / "heldout.jsonl")
    (written,) = [json.loads(text) for text in copy.read_text().splitlines()]
    assert written == {
        **line,
        "id": "a-heldout",
        "audio": str(manifest.parent.resolve() / "wavs/a.flac"),
        "meta": {"k": 1, "instruction_split": "heldout"},
    }
    assert heldout_line(line)["audio"] == "wavs/a.flac" and line["id"] == "a"  # not mutated
