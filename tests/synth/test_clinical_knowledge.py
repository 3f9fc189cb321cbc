"""The synthetic clinical domain where knowledge transfers: its coverage split and its notes."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from speechllm.cli.data import main as data_main
from speechllm.data.text import TextClassificationData
from speechllm.data.text_classification import read_text_examples
from speechllm.importers.clinical_outcomes import to_manifests
from speechllm.synth.clinical_knowledge import (
    DEPARTMENTS,
    associations,
    build_knowledge,
    write_clinical_knowledge,
)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("knowledge")
    write_clinical_knowledge(out, seed=3, size="tiny")
    return out


def notes(path: Path) -> list[str]:
    return sorted({e.text for e in read_text_examples([path])})


def mentioned(texts: list[str], evidence: dict[str, str]) -> Counter[str]:
    """How often each piece of evidence is named in ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(e for e in evidence if re.search(rf"\b{re.escape(e)}\b", text, re.I))
    return counts


def test_it_is_a_pure_function_of_the_seed(domain: Path, tmp_path: Path) -> None:
    write_clinical_knowledge(tmp_path, seed=3, size="tiny")
    for name in ("train.jsonl", "test.jsonl", "domain_text.txt", "heldout_shuffled.txt"):
        assert (tmp_path / name).read_bytes() == (domain / name).read_bytes()
    write_clinical_knowledge(tmp_path / "other", seed=4, size="tiny")
    assert (tmp_path / "other" / "train.jsonl").read_bytes() != (
        domain / "train.jsonl"
    ).read_bytes()


def test_test_weighted_associations_are_only_in_the_domain_corpus(domain: Path) -> None:
    kb = build_knowledge(3)
    seen, unseen = associations(kb, seen=True), associations(kb, seen=False)
    assert not set(seen) & set(unseen)
    train = mentioned(notes(domain / "train.jsonl"), {**seen, **unseen})
    assert train and set(train) <= set(seen)  # downstream training never meets the rest
    test = mentioned(notes(domain / "test.jsonl"), {**seen, **unseen})
    share = sum(n for e, n in test.items() if e in unseen) / sum(test.values())
    assert share > 0.6  # the test set is weighted to them (unseen_rate 0.8)
    corpus = (domain / "domain_text.txt").read_text().lower()
    stated = {e for e in {**seen, **unseen} if re.search(rf"\b{re.escape(e)}\b", corpus)}
    assert stated == set(seen) | set(unseen)  # the corpus states every association
    for evidence, partner in unseen.items():  # ... with its right partner
        lines = [x for x in corpus.splitlines() if re.search(rf"\b{re.escape(evidence)}\b", x)]
        assert all(partner.lower() in line for line in lines)


def test_no_note_names_its_label(domain: Path) -> None:
    kb = build_knowledge(3)
    names = [c.name.split()[0] for c in kb.conditions] + [c.code for c in kb.conditions]
    pattern = re.compile(rf"\b({'|'.join([*names, *DEPARTMENTS])})\b", re.I)
    for split in ("train", "dev", "test"):
        for example in read_text_examples([domain / f"{split}.jsonl"]):
            assert not pattern.search(example.text), example.text
            if example.task == "diagnoses":
                assert example.labels


def test_a_large_long_tailed_multi_label_task_and_a_small_one(domain: Path) -> None:
    sets = json.loads((domain / "label_sets.json").read_text())
    assert len(sets["diagnoses"]) >= 50 and sets["department"] == sorted(DEPARTMENTS)
    weights = sorted((c.weight for c in build_knowledge(3).conditions), reverse=True)
    assert weights[0] / weights[-1] >= 50  # Zipf: the head is common, the tail rare
    data = TextClassificationData(
        [str(domain / "train.jsonl")], [str(domain / "dev.jsonl")], str(domain / "label_sets.json")
    )
    assert data.label_sets()["diagnoses"] == sets["diagnoses"]


def test_held_out_wordings_are_not_in_the_corpus(domain: Path) -> None:
    corpus = set((domain / "domain_text.txt").read_text().splitlines())
    true = (domain / "heldout_associations.txt").read_text().splitlines()
    wrong = (domain / "heldout_shuffled.txt").read_text().splitlines()
    assert len(true) == len(wrong) and not corpus & set(true)
    for t, w in zip(true, wrong, strict=True):  # the same wording, only the partner wrong
        words = list(zip(t.split(), w.split(), strict=True))
        assert 1 <= sum(a != b for a, b in words) <= 2, (t, w)


def test_the_command_line(tmp_path: Path, capsys) -> None:
    assert data_main(["synth", "clinical-knowledge", str(tmp_path), "--size", "tiny"]) == 0
    assert "train.jsonl: 80 line(s)" in capsys.readouterr().out


def test_the_outcome_csv_imports_as_the_diagnoses_manifests(domain: Path, tmp_path: Path) -> None:
    to_manifests(domain / "outcome_csv", tmp_path)
    for split in ("train", "dev", "test"):
        ours = [e for e in read_text_examples([domain / f"{split}.jsonl"]) if e.task == "diagnoses"]
        imported = read_text_examples([tmp_path / "diagnoses" / f"{split}.jsonl"])
        assert [(e.text, sorted(e.labels)) for e in imported] == [
            (e.text, sorted(e.labels)) for e in ours
        ]
    assert sorted((tmp_path / "domain_text.txt").read_text().splitlines()) == notes(
        domain / "train.jsonl"
    )
