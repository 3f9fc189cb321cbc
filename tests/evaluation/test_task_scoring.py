"""A task owns its scoring: a task registered from user code evaluates end to end, and tasks
with a classification head are answered and scored through the head."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from speechllm.data import instructions
from speechllm.data.datamodule import eval_batches
from speechllm.data.features import Featurizer
from speechllm.data.manifest import read_manifests
from speechllm.evaluation.decoding import DecodingConfig
from speechllm.evaluation.metrics import choose_threshold, multi_hot, split_labels
from speechllm.evaluation.run import evaluate
from speechllm.evaluation.scoring import score_task
from speechllm.models import ClassificationHead, ConvDownsampler, SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.tasks import TASKS, Task, register_task
from speechllm.testing import write_tiny_manifest
from tests.tiny_run import TinyRun

DECODING = DecodingConfig(max_new_tokens=8)
SYMPTOMS = ["cardiac", "renal", "respiratory"]


@pytest.fixture
def language_id() -> Iterator[Task]:
    """A task no file of the package knows: registered with its templates, then removed."""
    task = register_task(
        Task("lid", "spoken language identification", "label", labels=("en", "de"))
    )
    instructions.register_templates(
        "lid",
        seen=["Which language is spoken?", "Name the language of the speech."],
        heldout=["What language do you hear?"],
    )
    yield task
    TASKS.pop("lid")
    instructions._REGISTERED.pop("lid")


def relabel(manifest: Path, out: Path, task: str, targets: list[str], labels=None) -> Path:
    """``manifest`` with every line turned into ``task`` with the given targets."""
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    with out.open("w") as f:
        for line, target in zip(lines, targets, strict=False):
            line |= {"task": task, "target": target, "audio": str(manifest.parent / line["audio"])}
            line.pop("labels", None)
            if labels:
                line["labels"] = labels
            f.write(json.dumps(line) + "\n")
    return out


def test_a_task_registered_in_user_code_evaluates_end_to_end(
    language_id: Task, tiny_run: TinyRun, tmp_path: Path
) -> None:
    model = SpeechLLM.from_pretrained(tiny_run.export)
    targets = ["en", "de"] * 6
    manifest = relabel(tiny_run.test, tmp_path / "lid.jsonl", "lid", targets)
    metrics = evaluate(model, [str(manifest)], tmp_path / "report", DECODING)
    rows = [
        json.loads(r)
        for r in (tmp_path / "report" / "predictions.jsonl").read_text().split("\n")
        if r
    ]
    assert {r["task"] for r in rows} == {"lid"} and len(rows) == 12
    assert {r["prediction"] for r in rows} <= {"en", "de"}  # constrained to the registry's labels
    assert all(r["instruction"] in instructions.load_templates("lid")["seen"] for r in rows)
    expected = score_task(
        "lid",
        [r["prediction"] for r in rows],
        [r["target"] for r in rows],
        ["en", "de"],
        [r["label_scores"] for r in rows],
    )
    assert metrics["tasks"]["lid"] == pytest.approx(expected)
    assert {"accuracy", "uar", "macro_f1", "auroc"} <= set(metrics["tasks"]["lid"])
    assert "lid" in metrics["confusion_matrices"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| lid | 12 | accuracy |" in report


def head_model() -> SpeechLLM:
    torch.manual_seed(0)
    model = SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler),
        tiny_llm("llama"),
        heads={
            "symptoms": partial(ClassificationHead, labels=SYMPTOMS),
            "ic": partial(ClassificationHead, labels=["odd", "even"]),
        },
    )
    with torch.no_grad():  # a head that separates items: random but far from 0.5 everywhere
        for head in model.heads.values():
            head.proj.weight.normal_(0, 3.0)
    return model.eval()


def test_head_tasks_are_read_and_scored_through_the_head(tmp_path: Path) -> None:
    model = head_model()
    base = write_tiny_manifest(tmp_path / "data", 16, tasks=("ic",), seed=3)
    multi = ["cardiac, respiratory", "none", "renal", "cardiac"] * 2
    test = relabel(base, tmp_path / "test.jsonl", "symptoms", multi, SYMPTOMS)
    dev = relabel(base, tmp_path / "dev.jsonl", "symptoms", list(reversed(multi)), SYMPTOMS)
    ic = relabel(base, tmp_path / "ic.jsonl", "ic", ["even", "odd"] * 8, ["even", "odd"])
    lines = ic.read_text().splitlines()
    ic.write_text(
        "\n".join(json.dumps(json.loads(x) | {"id": f"ic-{i}"}) for i, x in enumerate(lines)) + "\n"
    )

    metrics = evaluate(
        model, [str(test), str(ic)], tmp_path / "report", DECODING, dev_manifests=[str(dev)]
    )
    rows = [
        json.loads(r)
        for r in (tmp_path / "report" / "predictions.jsonl").read_text().split("\n")
        if r
    ]
    symptoms = [r for r in rows if r["task"] == "symptoms"]

    # the threshold is the one that maximises micro F1 on dev, computed here independently
    dev_probs, dev_truth = [], []
    for batch in eval_batches(
        read_manifests([str(dev)]), Featurizer(model.encoder.feature_extractor)
    ):
        audio = model.encode_audio(batch["audio"], batch["audio_lengths"])
        probs = model.classify(audio, batch["instructions"], "symptoms")
        dev_probs.append(probs.numpy())
        dev_truth.append(multi_hot([split_labels(t) for t in batch["targets"]], SYMPTOMS))
    threshold = choose_threshold(np.concatenate(dev_truth), np.concatenate(dev_probs))
    assert metrics["scoring"]["symptoms"]["threshold (chosen on dev)"] == f"{threshold:.4f}"

    for row in symptoms:
        on = [lab for lab, p in zip(SYMPTOMS, row["label_scores"], strict=True) if p >= threshold]
        assert row["prediction"] == (", ".join(on) or "none")  # the head's answer, label-set order
    expected = score_task(
        "symptoms",
        [r["prediction"] for r in symptoms],
        [r["target"] for r in symptoms],
        SYMPTOMS,
        [r["label_scores"] for r in symptoms],
    )
    assert metrics["tasks"]["symptoms"] == pytest.approx(expected)
    assert {"auroc", "micro_f1", "macro_f1"} <= set(metrics["tasks"]["symptoms"])
    # a multi-label target counts each of its labels (not the whole string as one label)
    assert multi_hot([split_labels("cardiac, respiratory")], SYMPTOMS).tolist() == [[1, 0, 1]]

    # a single-label head task: the top label, scores in the manifest's label order
    ic_rows = [r for r in rows if r["task"] == "ic"]
    for row in ic_rows:
        assert row["prediction"] == ["odd", "even"][int(np.argmax(row["label_scores"]))]
    assert "auroc" in metrics["tasks"]["ic"]


def test_head_labels_must_match_the_manifest(tmp_path: Path) -> None:
    base = write_tiny_manifest(tmp_path / "data", 2, tasks=("ic",), seed=3)
    bad = relabel(base, tmp_path / "bad.jsonl", "symptoms", ["cardiac"] * 2, ["cardiac", "other"])
    with pytest.raises(ValueError, match="bad.jsonl:1: task 'symptoms' has labels"):
        evaluate(head_model(), [str(bad)], tmp_path / "report", DECODING)
