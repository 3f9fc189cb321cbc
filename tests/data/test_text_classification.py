"""Text classification manifests: validated lines with file:line errors, label sets, batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechllm.data.errors import ManifestError
from speechllm.data.text import TextClassificationData, read_lines
from speechllm.data.text_classification import (
    TextExample,
    label_sets,
    read_text_examples,
    write_label_sets,
    write_text_examples,
)

GOOD = [
    {"id": "a", "text": "Takes nadex daily.", "task": "diagnoses", "labels": ["I01", "K02"]},
    {"id": "b", "text": "Labs showed low rudo.", "task": "diagnoses", "target": "K02"},
    {"text": "Plan: gesi scan.", "task": "mortality", "target": "0"},
    {"text": "Stable.", "task": "mortality", "labels": ["1"]},
    {"text": "Nothing coded.", "task": "diagnoses", "labels": []},
]
BAD = {  # line -> reason
    '{"text": "x", "task": "t"}': "missing_field",  # neither target nor labels
    '{"text": "x", "task": "t", "target": "a", "labels": ["a"]}': "missing_field",
    '{"text": "x", "task": "t", "target": "a", "extra": 1}': "bad_field",
    '{"text": "  ", "task": "t", "target": "a"}': "bad_field",
    '{"text": "x", "task": "not an id", "target": "a"}': "bad_field",
    '{"text": "x", "task": "asr", "target": "a"}': "bad_field",  # a registered non-classifier
    '{"text": "x", "task": "t", "labels": ["a,b"]}': "bad_label",
    '{"text": "x", "task": "t", "labels": ["a", "a"]}': "bad_label",
    '{"text": "x", "task": "t", "labels": "a"}': "bad_field",
    '{"id": "a", "text": "x", "task": "t", "target": "a"}': "duplicate_id",
    '{"text": "x", "task": "t", "target": 3}': "bad_field",
    "[1, 2]": "malformed_json",
}


def write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_good_lines_read_with_their_labels(tmp_path: Path) -> None:
    examples = read_text_examples([write(tmp_path / "m.jsonl", GOOD)])
    assert [e.labels for e in examples] == [("I01", "K02"), ("K02",), ("0",), ("1",), ()]
    assert examples[2].id == "m-3" and examples[0].target == "I01, K02"
    assert label_sets(examples) == {"diagnoses": ["I01", "K02"], "mortality": ["0", "1"]}


@pytest.mark.parametrize("line,reason", list(BAD.items()))
def test_a_bad_line_names_file_line_and_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path / "m.jsonl", [GOOD[0], line])
    with pytest.raises(ManifestError) as caught:
        read_text_examples([path])
    assert (caught.value.source, caught.value.line, caught.value.reason) == (str(path), 2, reason)
    problems = []
    assert len(read_text_examples([path], on_error=problems.append)) == 1 and len(problems) == 1


def test_lines_are_bounded(tmp_path: Path) -> None:
    long = write(tmp_path / "long.jsonl", [{"text": "x" * 300, "task": "t", "target": "a"}])
    with pytest.raises(ManifestError, match="too_long"):
        read_text_examples([long], max_chars=100)
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"text": "' + "y" * 20_000 + '"}\n')
    with pytest.raises(ManifestError, match=r"huge.jsonl:1: line longer than .*too_long"):
        read_text_examples([huge], max_chars=100)


def test_writer_round_trips(tmp_path: Path) -> None:
    examples = [TextExample("x", "a note", "dia", ("b", "a")), TextExample("y", "n", "dia", ())]
    write_text_examples(tmp_path / "out" / "m.jsonl", examples)
    read = read_text_examples([tmp_path / "out" / "m.jsonl"])
    assert [(e.id, e.text, e.task, e.labels) for e in read] == [
        (e.id, e.text, e.task, e.labels) for e in examples
    ]


def test_data_module_sizes_heads_from_a_label_file_and_batches(tmp_path: Path) -> None:
    train = write(tmp_path / "train.jsonl", GOOD)
    dev = write(tmp_path / "dev.jsonl", [{"text": "y", "task": "diagnoses", "labels": ["G09"]}])
    with pytest.raises(ManifestError, match=r"dev.jsonl:1: labels \['G09'\].*data.label_file"):
        TextClassificationData([str(train)], [str(dev)])
    sets = write_label_sets(tmp_path / "sets.json", {
        "diagnoses": ["G09", "I01", "K02"], "mortality": ["0", "1"], "unused": ["p", "q"]
    })  # fmt: skip
    data = TextClassificationData([str(train)], [str(dev)], str(sets), batch_size=2)
    assert data.label_sets() == {"diagnoses": ["G09", "I01", "K02"], "mortality": ["0", "1"]}
    batches = list(data.train_dataloader())
    assert sum(len(b["texts"]) for b in batches) == 5 and set(batches[0]) >= {"texts", "targets"}
    assert next(iter(data.val_dataloader()))["targets"] == ["G09"]


def test_the_domain_corpus_reads_a_manifests_texts(tmp_path: Path) -> None:
    assert read_lines(write(tmp_path / "m.jsonl", GOOD[:2])) == [GOOD[0]["text"], GOOD[1]["text"]]
    (tmp_path / "c.txt").write_text("one\n\n two \n")
    assert read_lines(tmp_path / "c.txt") == ["one", "two"]
