"""The clinical synthetic domain: dictations, their labels, the plan and the text corpus."""

from __future__ import annotations

import random

import pytest

from speechllm.synth import SynthConfig
from speechllm.synth.clinical import (
    DEPARTMENTS,
    SYMPTOM_CLASSES,
    SYMPTOMS,
    plan_clinical_split,
    sample_dictation,
    write_corpus,
)
from speechllm.synth.generate import _specs
from speechllm.synth.plan import sentence_split
from speechllm.tasks import get_task


def test_dictation_labels_follow_its_words() -> None:
    rng = random.Random(0)
    for _ in range(200):
        d = sample_dictation(rng)
        mentioned = {c for c, phrases in SYMPTOMS.items() if any(p in d.text for p in phrases)}
        assert set(d.symptom_classes) <= mentioned and 1 <= len(d.symptom_classes) <= 3
        assert list(d.symptom_classes) == [c for c in SYMPTOM_CLASSES if c in d.symptom_classes]
        _, procedures, drugs = DEPARTMENTS[d.department]
        assert any(p in d.text for p in procedures) and any(x in d.text for x in drugs)
    assert get_task("symptoms").metric == "auroc"


def test_clinical_plan_gives_three_tasks_per_clip_and_a_train_only_corpus(tmp_path) -> None:
    cfg = SynthConfig(out=str(tmp_path), domain="clinical", n_train=30, n_dev=5, n_test=5)
    plans = {s.name: plan_clinical_split(s, 0, 0.1, 0.1) for s in _specs(cfg)}
    texts = {}
    for split, items in plans.items():
        for item in items:
            assert [line["task"] for line in item.lines] == ["asr", "symptoms", "department"]
            texts.setdefault(split, set()).add(item.lines[0]["target"])
    assert not (texts["train"] & texts["test"]) and not (texts["train"] & texts["dev"])
    assert write_corpus(tmp_path / "text.txt", 50, 0, 0.1, 0.1) == 50
    lines = (tmp_path / "text.txt").read_text().splitlines()
    assert all(sentence_split(line, 0, 0.1, 0.1) == "train" for line in lines)
    with pytest.raises(ValueError, match="unknown domain"):
        SynthConfig(out="x", domain="legal")
