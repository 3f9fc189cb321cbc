"""Every figure the README quotes comes from a committed result file that records its command,
date, commit and machine (docs/results.md). The tables are generated from their files and
tested beside their scripts; this checks the figures quoted in prose, that every result file the
README cites is committed with those four fields, and that a benchmark whose result file was not
kept is marked "not yet recorded" wherever the README names it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROVENANCE = ("command", "date", "commit", "machine")


def readme() -> str:
    """The README with its line breaks and runs of spaces as single spaces."""
    return " ".join((REPO / "README.md").read_text().split())


def result(path: str) -> dict[str, Any]:
    return json.loads((REPO / path).read_text())


def assert_quotes_changes(text: str, old: dict, new: dict, claims: list[tuple]) -> None:
    """Each claim ``(task, metric, phrase, format)``: ``phrase`` with the task's old and new
    figures (``"ASR {} -> {} % WER"``) is in ``text``."""
    for task, key, phrase, fmt in claims:
        quoted = phrase.format(format(old[task][key], fmt), format(new[task][key], fmt))
        assert quoted in text, quoted


def test_every_result_file_the_readme_cites_is_committed_with_its_provenance() -> None:
    cited = set(re.findall(r"`([\w.-]+/[\w./-]*results?[\w./-]*\.json)`", readme()))
    assert "benchmarks/results/serve_load.json" in cited, "the pattern lost the citations"
    for path in sorted(cited):
        assert (REPO / path).is_file(), f"README cites {path}, which is not in the repository"
        missing = [key for key in PROVENANCE if not result(path).get(key)]
        assert not missing, f"{path} has no {missing}"


@pytest.mark.parametrize("script", ["soak", "real_size", "data_scale"])
def test_a_benchmark_without_a_committed_result_is_marked_not_yet_recorded(script: str) -> None:
    if (REPO / "benchmarks" / "results" / f"{script}.json").is_file():
        pytest.skip(f"{script}.json is recorded: quote it, with a test, where the README needs it")
    paragraphs = (REPO / "README.md").read_text().split("\n\n")
    naming = [p for p in paragraphs if f"benchmarks/{script}.py" in p]
    assert naming, f"the README no longer names benchmarks/{script}.py"
    for paragraph in naming:
        assert "not yet recorded" in paragraph, paragraph
    assert "## Not yet recorded" in (REPO / "docs" / "results.md").read_text()


def test_the_demo_prose_quotes_its_results() -> None:
    """make demo's recipe: under 45 minutes from synthesis to answer, its figures against the
    first recipe's, the text answers kept, and what fell."""
    demo, first = (
        result(f"recipes/synthetic_real/results/{n}.json") for n in ("demo", "first_demo")
    )
    assert demo["experiment"] == "synthetic_real_ctc" and demo["minutes"]["synth"] > 0
    text = readme()
    total = sum(demo["minutes"].values())
    assert total < 45 and f"the whole run took {total:.1f} minutes" in text
    t, o = demo["tasks"], first["tasks"]
    assert (
        f"ASR {o['asr']['wer']:.1f} -> {t['asr']['wer']:.1f} % WER on voices it never heard "
        f"(Whisper tiny.en's own decoder on the same clips: {demo['anchor']['wer']:.1f} %)"
    ) in text
    split = demo["instruction_splits"]["asr"]
    assert abs(split["seen"]["wer"] - split["heldout"]["wer"]) < 1
    assert "with held-out instructions within 1 point of seen" in text
    claims = [
        ("ic", "accuracy", "intents {} -> {} %", ".0f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1", ".1f"),
        ("kwe", "f1", "keyword extraction {} -> {} F1", ".1f"),
        ("sns", "uar", "speech/non-speech {} -> {} UAR", ".1f"),
    ]
    assert_quotes_changes(text, o, t, claims)
    skills = demo["text_skills"]
    assert skills["trained_accuracy"] == skills["base_accuracy"]
    kept = round(skills["trained_accuracy"] * skills["n"] / 100)
    assert f"text answers are kept, {kept} of {skills['n']} questions right as the base" in text
    weights = yaml.safe_load((REPO / "conf" / "mixture" / "synthetic_real.yaml").read_text())
    steps = {s["stage"]: s["steps"] for s in demo["stages"]}["multitask"]
    total_weight = sum(weights.values())
    assert (
        f"(about {steps * weights['sns'] / total_weight:.0f} of the {steps} multitask steps: "
        f"weight {weights['sns']} of {total_weight:.1f}"
    ) in text
    better = result("recipes/synthetic_real/results/long_ctc.json")["tasks"]["st"]["bleu"]
    assert f"translation stays near zero ({t['st']['bleu']:.1f} BLEU;" in text
    assert f"1,200 multitask steps reached {better:.1f})" in text
    assert f"Keyword spotting ({t['kws']['accuracy']:.1f} %)" in text
    assert f"the open-vocabulary set ({demo['open_vocab']['asr']['wer']:.1f} % WER)" in text
    long_ctc4, long_ctc6 = (
        {
            st["stage"]: st["steps"]
            for st in result(f"recipes/synthetic_real/results/{n}.json")["stages"]
        }
        for n in ("long_ctc4", "long_ctc6")
    )
    assert (
        f"this recipe run longer ({long_ctc4['lora_warmup']} warm-up and "
        f"{long_ctc4['multitask']:,} multitask steps), then its aligner on four times the training "
        f"lines and {long_ctc6['multitask']:,} more multitask steps."
    ) in text


def test_the_first_demo_prose_quotes_its_results() -> None:
    demo = result("recipes/synthetic_real/results/first_demo.json")
    text = readme()
    asr, anchor = demo["tasks"]["asr"]["wer"], demo["anchor"]["wer"]
    assert f"voices it never heard at {asr:.1f} % WER" in text
    assert f"own decoder on the same clips ({anchor:.1f} %" in text
    split = demo["instruction_splits"]["asr"]
    assert abs(split["seen"]["wer"] - split["heldout"]["wer"]) < 3
    assert "held-out instructions within 3 points on ASR" in text
    assert f"scores {demo['open_vocab']['asr']['wer']:.1f} % WER" in text
    skills = demo["text_skills"]
    off, on = (round(skills[k] * skills["n"] / 100) for k in ("base_accuracy", "trained_accuracy"))
    assert f"({off} of {skills['n']} questions right with the adapters off, {on} with" in text
    training = sum(stage["seconds"] for stage in demo["stages"]) / 60
    evaluation = demo["minutes"]["evaluate"]
    assert f"took {training:.0f} minutes of training plus {evaluation:.0f} of evaluation" in text
    assert training + evaluation > 45 and "over the 45-minute target" in text
    # the steps each task had: its weight's share of the multitask stage
    weights = yaml.safe_load((REPO / "conf" / "mixture" / "synthetic_tiny.yaml").read_text())
    steps = {s["stage"]: s["steps"] for s in demo["stages"]}["multitask"]
    total = sum(weights.values())
    assert f"weight {weights['ic']} of {total:.1f}" in text
    assert f"about {steps * weights['ic'] / total:.0f} (ic, sf, st, kws, kwe" in text
    assert f"about {10 * round(steps * weights['ac'] / total / 10)} (accent) of the {steps}" in text


def test_the_long_run_prose_quotes_its_results() -> None:
    demo, long = (
        result(f"recipes/synthetic_real/results/{n}.json") for n in ("first_demo", "long_run")
    )
    more = long["stages"][-1]
    assert more["stage"] == "multitask (continued)"
    text = readme()
    assert f"continued for {more['steps']} more multitask steps" in text
    assert (
        f"ASR falls from {demo['tasks']['asr']['wer']:.1f} to {long['tasks']['asr']['wer']:.1f} "
        f"% WER (Whisper tiny.en's own: {long['anchor']['wer']:.1f}) and intents start "
        f"({long['tasks']['ic']['accuracy']:.0f} %)"
    ) in text


def test_the_model_in_the_box_prose_quotes_its_result() -> None:
    model = REPO / "recipes" / "synthetic_real" / "model"
    check = result("recipes/synthetic_real/model/result.json")
    assert all(check[key] for key in PROVENANCE)
    text = readme()
    assert f"check WER: {check['check']['wer']:.1f} on those clips" in text
    assert f"{check['check']['n']} check clips" in text
    weights = [model / "trainable.safetensors", *(model / "adapters").rglob("*.safetensors")]
    assert f"LoRA: {sum(p.stat().st_size for p in weights) / 1e6:.0f} MB" in text


def test_the_joint_decoding_prose_quotes_its_result() -> None:
    tasks = result("recipes/synthetic_tiny/results/joint_vs_direct.json")["results"]
    direct, joint = tasks["direct"]["tasks"], tasks["joint"]["tasks"]
    wers = [joint[t]["transcript_wer"] for t in joint]
    assert (
        f"intent ({joint['ic']['accuracy']:.1f} vs {direct['ic']['accuracy']:.1f} %) and sentiment "
        f"({joint['asc']['uar']:.1f} vs {direct['asc']['uar']:.1f} UAR) and above it on slots "
        f"({joint['sf']['slu_f1']:.1f} vs {direct['sf']['slu_f1']:.1f} SLU-F1): the tiny model's "
        f"own transcripts are {min(wers):.0f}-{max(wers):.0f} % wrong"
    ) in readme()
