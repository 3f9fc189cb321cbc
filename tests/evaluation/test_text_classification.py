"""A text classifier through the package's entry points: export and load, speechllm-eval (its
metrics, against sklearn), speechllm-infer --text, and speechllm-serve's refusal."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import openai
import pytest
import torch
from sklearn.metrics import roc_auc_score

from speechllm.cli.eval import run
from speechllm.cli.infer import main as infer
from speechllm.config import compose
from speechllm.data.text_classification import (
    TextExample,
    read_text_examples,
    write_text_examples,
)
from speechllm.evaluation.metrics import auroc, label_aurocs, micro_auroc
from speechllm.evaluation.text_classification import probabilities
from speechllm.inference import MAX_TEXT_CHARS, classify_text
from speechllm.models import TextClassifier
from speechllm.models.pretrained import load, save_pretrained
from speechllm.models.tiny import tiny_llm, tiny_lora
from speechllm.serving import ServeConfig, running
from speechllm.serving.server import load_app

LABELS = {"diagnoses": ["A01", "B02", "C03", "D04"], "mortality": ["0", "1"]}
NODE = {
    "_target_": "speechllm.models.TextClassifier",
    "llm": {
        "_target_": "speechllm.models.tiny.tiny_llm",
        "kind": "llama",
        "adapters": {"task": {"_target_": "peft.LoraConfig", "r": 4, "target_modules": ["q_proj"]}},
    },
    "label_sets": LABELS,
    "adapters": ["task"],
}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TextClassifier]:
    torch.manual_seed(0)
    llm = tiny_llm("llama", adapters={"task": tiny_lora(r=4, target_modules=["q_proj"])})
    model = TextClassifier(llm, LABELS, adapters=["task"])
    with torch.no_grad():  # trained-looking: the adapter and heads change the outputs
        for p in [*llm.adapter_parameters("task"), *model.heads.parameters()]:
            p.normal_(std=0.3)
    return save_pretrained(model, tmp_path_factory.mktemp("x") / "export", NODE), model.eval()


def manifest(path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(n):
        codes = tuple(c for c in LABELS["diagnoses"] if rng.random() < 0.4)
        text = f"note {i}: " + " ".join(rng.choice(list("abcdefgh"), 12))
        examples += [
            TextExample(f"d{i}", text, "diagnoses", codes + (("Z99",) if i == 0 else ())),
            TextExample(f"m{i}", text, "mortality", (str(i % 2),)),
        ]
    write_text_examples(path, examples)
    return path


def test_the_export_loads_as_the_same_classifier(export) -> None:
    folder, model = export
    loaded = load(folder)
    assert isinstance(loaded, TextClassifier) and loaded.llm.active_adapters == ["task"]
    texts = ["chest pain", "a longer note about a fall"]
    torch.testing.assert_close(
        loaded.classify(texts, "diagnoses"), model.classify(texts, "diagnoses")
    )
    card = (folder / "README.md").read_text()
    assert "text-classification" in card and "`diagnoses`, `mortality`" in card


def test_eval_scores_each_task_as_sklearn_does(export, tmp_path: Path) -> None:
    folder, model = export
    test, dev = manifest(tmp_path / "test.jsonl", 24, 0), manifest(tmp_path / "dev.jsonl", 12, 1)
    overrides = [f"checkpoint={folder}", f"manifest={test}", f"dev_manifest={dev}",
                 f"out={tmp_path / 'eval'}", "device=cpu"]  # fmt: skip
    metrics = run(compose(overrides, config_name="eval"))
    assert metrics == json.loads((tmp_path / "eval" / "metrics.json").read_text())
    examples = [e for e in read_text_examples([test]) if e.task == "diagnoses"]
    rows, probs = probabilities(model, examples)["diagnoses"]
    truth = np.array([[c in e.labels for c in LABELS["diagnoses"]] for e in rows], float)
    scores = metrics["tasks"]["diagnoses"]
    scorable = [j for j in range(4) if 0 < truth[:, j].sum() < len(rows)]
    expected = np.mean([roc_auc_score(truth[:, j], probs[:, j]) for j in scorable]) * 100
    assert scores["auroc"] == pytest.approx(expected)
    assert auroc(truth, probs) == pytest.approx(expected)
    assert scores["micro_auroc"] == pytest.approx(100 * roc_auc_score(truth.ravel(), probs.ravel()))
    per_label = metrics["per_label"]["diagnoses"]
    assert [v["auroc"] for v in per_label.values()] == pytest.approx(label_aurocs(truth, probs))
    assert scores["unknown_labels"] == 1 and scores["n"] == 24  # Z99 has no column
    assert metrics["thresholds"]["diagnoses"]["chosen_on"] == "dev"
    assert "micro_f1" in scores and "macro_f1" in scores and metrics["mean_auroc"] is not None
    assert "| diagnoses | 24 |" in (tmp_path / "eval" / "report.md").read_text()


def test_metric_edge_cases() -> None:
    truth = np.array([[1, 0], [1, 1], [1, 0]])
    assert np.isnan(label_aurocs(truth, np.ones((3, 2)))[0])
    assert np.isnan(micro_auroc(np.ones((2, 2)), np.ones((2, 2))))


def test_infer_answers_a_text_with_label_probabilities(export) -> None:
    folder, model = export
    expected = classify_text(model, "a note", ["mortality"])
    assert list(expected) == ["mortality"] and set(expected["mortality"]) == {"0", "1"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        infer(["--model", str(folder), "--text", "a note", "--device", "cpu", "--top", "1"])
    shown = json.loads(printed.getvalue())
    assert set(shown) == {"diagnoses", "mortality"} and len(shown["diagnoses"]) == 1
    assert shown["mortality"] == dict(list(expected["mortality"].items())[:1])
    with pytest.raises(SystemExit):  # audio for a text classifier
        infer(["clip.wav", "Transcribe.", "--model", str(folder), "--device", "cpu"])


def test_serve_answers_moderations_with_the_classifiers_probabilities(export) -> None:
    folder, model = export
    texts = ["chest pain since this morning", "fell at home, hip pain"]
    config = ServeConfig(max_batch_size=2, api_key="k")
    with running(load_app(str(folder), "notes", config=config)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        reply = client.moderations.create(model="notes", input=texts)
        for text, result in zip(texts, reply.to_dict()["results"], strict=True):
            expected = classify_text(model, text)
            scores = result["category_scores"]
            assert scores.keys() == {f"{t}/{label}" for t in LABELS for label in LABELS[t]}
            for task, labels in expected.items():
                for label, p in labels.items():
                    assert scores[f"{task}/{label}"] == pytest.approx(p, abs=1e-6)
                    assert result["categories"][f"{task}/{label}"] is (p >= 0.5)
            assert result["flagged"] is any(result["categories"].values())
        one = client.moderations.create(
            model="notes", input=texts[0], extra_body={"tasks": ["mortality"]}
        )
        assert set(one.to_dict()["results"][0]["category_scores"]) == {"mortality/0", "mortality/1"}
        refusals = [
            dict(model="notes", input=texts * 2),  # more texts than a batch
            dict(model="notes", input=""),
            dict(model="notes", input="x" * (MAX_TEXT_CHARS + 1)),
            dict(model="notes", input="x", extra_body={"tasks": ["nope"]}),
        ]
        for request in refusals:
            with pytest.raises(openai.BadRequestError):
                client.moderations.create(**request)
        with pytest.raises(openai.NotFoundError):
            client.moderations.create(model="other", input="x")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).moderations.create(
                model="notes", input="x"
            )
        assert [m.id for m in client.models.list()] == ["notes"]


def test_the_recipe_readmes_moderations_example_runs(export, capsys) -> None:
    readme = (Path(__file__).parents[2] / "recipes" / "clinical_two_step" / "README.md").read_text()
    snippet = next(b for b in readme.split("```python\n")[1:] if "moderations" in b)
    snippet = snippet.split("```")[0]
    with running(load_app(str(export[0]), "notes")) as url:
        exec(snippet.replace("http://127.0.0.1:8000", url), {})
    printed = capsys.readouterr().out
    assert printed.startswith("{") and "'diagnoses/A01'" in printed
