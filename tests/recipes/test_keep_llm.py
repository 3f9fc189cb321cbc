"""The keep-the-LLM comparison (recipes/synthetic_real/keep_llm.py): every arm's overrides make
a valid config with the option switched on, the text items are not the text-skills questions,
and the README table is the one its committed results JSON generates."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from speechllm.config import compose, validate
from speechllm.evaluation.text_skills import QUESTIONS

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "synthetic_real"
sys.path.insert(0, str(RECIPE))

from keep_llm import ARMS, TEXT, budget, parse_args  # noqa: E402
from text_instruct import questions  # noqa: E402


@pytest.mark.parametrize("arm", list(ARMS))
def test_each_arm_composes_with_its_option_on(arm: str, tmp_path: Path) -> None:
    overrides = [*budget(parse_args([])), *ARMS[arm]]
    cfg = compose(["experiment=synthetic_real", *overrides], output_dir=tmp_path)
    validate(cfg)
    stages = cfg.curriculum.stages
    assert stages.lora_warmup.steps == 100 and cfg.trainer.max_steps == 1450
    kd = arm in ("kd", "all")
    assert (stages.multitask.objective.get("kd", 0.0) == 1.0) is kd
    assert (stages.lora_warmup.objective.get("kd", 0.0) == 1.0) is kd
    text = arm in ("text", "all")
    assert ("text" in stages.multitask.tasks) is text
    assert (list(cfg.data.text_manifests) == [TEXT]) is text
    assert cfg.module.model.audio_gated is (arm in ("gated", "all"))
    assert cfg.module.model.ctc_compress is arm.startswith("compress")
    assert cfg.module.model.ctc_compress_detach is (arm == "compress_detach")


def test_text_items_are_the_scripts_questions_and_never_a_text_skills_question() -> None:
    lines = [json.loads(line) for line in (REPO / TEXT).read_text().splitlines()]
    assert [line["instruction"] for line in lines] == questions()
    assert all(line["target"] for line in lines)
    asked = {q.lower() for q, _ in QUESTIONS}
    assert not asked & {line["instruction"].lower() for line in lines}


def test_readme_keep_llm_command_composes_with_each_option(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Keeping the LLM's mind")[1]
    command = section.split("```bash\n")[1].split("```")[0].replace("\\\n", " ")
    words = shlex.split(command)
    assert words[0] == "speechllm-train"
    cfg = compose(words[1:], output_dir=tmp_path)
    validate(cfg)
    assert cfg.module.model.audio_gated is True
    assert cfg.curriculum.stages.multitask.objective.kd == 1.0
    assert "text" in cfg.curriculum.stages.multitask.tasks


def test_readme_keep_tables_are_generated_from_the_committed_results() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from keep_llm import gap_table, readme_table
    from keep_llm_step import readme_table as step_table

    result = json.loads((RECIPE / "results" / "keep_llm.json").read_text())
    steps = json.loads((REPO / "benchmarks" / "results" / "keep_llm_step.json").read_text())
    for stamped in (result, steps):
        assert all(stamped[key] for key in ("command", "date", "commit", "machine"))
    assert set(result["arms"]) == {
        "baseline", "kd", "text", "gated", "all", "compress", "compress_detach"
    }  # fmt: skip
    readme = (RECIPE / "README.md").read_text()
    for marker, table in (
        ("keep-table", readme_table(result)),
        ("keep-gap-table", gap_table(result)),
        ("keep-step-table", step_table(steps)),
    ):
        start, end = f"<!-- {marker}:start -->\n", f"\n<!-- {marker}:end -->"
        assert readme.split(start)[1].split(end)[0] == table


def test_readme_prose_matches_the_committed_arms() -> None:
    """The claims under the tables: text mixing keeps the most text skills and the best WER,
    gating leaves text answers the base's and speech scores the baseline's, kd moves
    first-word naming and costs about a third more per step; all three keep the base's text
    answers, name first words as kd does, and land between kd's and text's WER. The compress
    arm (how the LLM reads the audio, not a keep-the-LLM option) has the lowest WER and the
    only intent accuracy above zero, and loses the text answers."""
    arms = json.loads((RECIPE / "results" / "keep_llm.json").read_text())["arms"]
    skills = {name: arm["text_skills"]["trained_accuracy"] for name, arm in arms.items()}
    wer = {name: arm["tasks"]["asr"]["wer"] for name, arm in arms.items()}
    keep = {name: wer[name] for name in wer if not name.startswith("compress")}
    assert max(skills, key=skills.get) == "text" and min(keep, key=keep.get) == "text"
    assert min(wer, key=wer.get) == "compress_detach"
    assert wer["compress_detach"] < wer["compress"] < wer["baseline"] - 10
    intent = {name: arm["tasks"]["ic"]["accuracy"] for name, arm in arms.items()}
    read_path = ("compress", "compress_detach")
    assert all(intent[n] > 10 for n in read_path)
    assert all(v == 0 for n, v in intent.items() if n not in read_path)
    assert skills["compress"] < skills["baseline"] == skills["compress_detach"]
    base, compress = f"{wer['baseline']:.1f}", f"{wer['compress']:.1f}"
    detach = f"{wer['compress_detach']:.1f}"
    assert f"from {base} to {compress}, and to {detach}" in (REPO / "README.md").read_text()
    recipe = (RECIPE / "README.md").read_text()
    assert f"({compress} against the\n  baseline's {base})" in recipe
    assert f"intent accuracy above zero ({intent['compress']:.0f} %)" in recipe
    assert f"**Reading it without gradients (`compress_detach`)** gave {detach} WER" in recipe
    assert skills["text"] > arms["text"]["text_skills"]["base_accuracy"]
    gated = arms["gated"]
    assert all(a["base"] == a["trained"] for a in gated["text_skills"]["answers"])
    assert gated["tasks"] == arms["baseline"]["tasks"]
    first = {n: a["unseen_tasks"]["tasks"]["first_word"]["accuracy"] for n, a in arms.items()}
    assert first["kd"] > 5 * first["baseline"] and first["all"] >= first["kd"]
    assert all(a["base"] == a["trained"] for a in arms["all"]["text_skills"]["answers"])
    assert wer["text"] < wer["all"] < wer["kd"]
    steps = json.loads((REPO / "benchmarks" / "results" / "keep_llm_step.json").read_text())
    cost = {r["setting"]: r["step_s"] for r in steps["rows"]}
    assert 1.2 < cost["kd"] / cost["baseline"] < 1.45 and cost["gated"] / cost["baseline"] < 1.05


def test_readme_longer_ctc_stage_table_and_prose() -> None:
    """The longer CTC stage: the same compress_detach arm and LoRA budget, 4x the CTC steps;
    ASR 53.8 -> 31.9, below the demo's 34.8; first word 57 %; sns, intents and text answers no
    better than after the shorter stage."""
    from keep_llm import readme_table

    short = json.loads((RECIPE / "results" / "keep_llm.json").read_text())
    long = json.loads((RECIPE / "results" / "keep_llm_align4800.json").read_text())
    demo = json.loads((RECIPE / "results" / "first_demo.json").read_text())
    assert long["budget"] == {**short["budget"], "align": 4 * short["budget"]["align"]}
    before, after = short["arms"]["compress_detach"], long["arms"]["compress_detach"]
    assert after["overrides"] == before["overrides"]
    wer = [arm["tasks"]["asr"]["wer"] for arm in (before, after)]
    assert [round(w, 1) for w in wer] == [53.8, 31.9] and wer[1] < demo["tasks"]["asr"]["wer"]
    assert round(after["unseen_tasks"]["tasks"]["first_word"]["accuracy"]) == 57
    for task, key in (("sns", "uar"), ("ic", "accuracy")):
        assert after["tasks"][task][key] <= before["tasks"][task][key]
    assert after["text_skills"]["trained_accuracy"] < before["text_skills"]["trained_accuracy"]
    readme = (RECIPE / "README.md").read_text()
    start, end = "<!-- keep-align4800-table:start -->\n", "\n<!-- keep-align4800-table:end -->"
    assert readme.split(start)[1].split(end)[0] == readme_table(long)
