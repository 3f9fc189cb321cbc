"""The real-bases demo (``make demo``): the smoke preset runs every phase on tiny random twins of
the bases (CTC alignment, LoRA warm-up, multitask, export, evaluation with the open-vocabulary
set, the unseen tasks and the text-skills check, an answer through ``speechllm-infer``), and the
README's demo table is the one its committed results JSON generates."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from speechllm.synth import SynthConfig, plan

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "synthetic_real"
sys.path.insert(0, str(RECIPE))

from align_ablation import table as align_table  # noqa: E402
from run_demo import BENCHMARKS, readme_table  # noqa: E402

from tests.test_readme_figures import assert_quotes_changes  # noqa: E402


def test_smoke_demo_runs_every_phase(tmp_path: Path) -> None:
    out, data = tmp_path / "demo", tmp_path / "data"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, str(RECIPE / "run_demo.py"), "--preset", "smoke", "--out", str(out),
           "--data", str(data), "--threads", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    stages = json.loads((out / "train" / "stages.json").read_text())
    assert [(s["stage"], s["steps"]) for s in stages] == [
        ("align", 4),
        ("lora_warmup", 3),
        ("multitask", 3),
    ]
    assert "[curriculum] stage 0 'align' started at step 0: trainable ['downsampler', " in log
    trainable = load_file(out / "model" / "trainable.safetensors")
    assert {"ctc.blank", "ctc.log_scale"} <= set(trainable)
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["open_vocab"]["asr"]["n"] == 60
    assert metrics["text_skills"]["n"] == len(metrics["text_skills"]["answers"]) > 0
    assert metrics["unseen_tasks"]["n"] == len(metrics["unseen_tasks"]["answers"]) == 4
    assert metrics["unseen_tasks"]["tasks"]["is_question"]["n"] == 4  # from meta.kind
    report = (out / "eval" / "report.md").read_text()
    assert "## Per task" in report and "## Text skills kept (no audio)" in report
    assert "## Unseen tasks (instructions for tasks never trained)" in report
    assert metrics["ctc_path"]["n"] == metrics["tasks"]["asr"]["n"] // 2  # test + held-out copy
    assert "## The CTC aligner's own transcript" in report
    assert "$ speechllm-infer" in log
    assert set(json.loads((out / "phases.json").read_text())) == {
        "synth", "fetch", "train", "evaluate", "answer"
    }  # fmt: skip


@functools.cache
def asr_sentences(folder: str) -> tuple[int, int]:
    """ASR lines and distinct sentences in a benchmark's training split, as the synthesiser
    plans them (no audio: CI does not build the benchmarks)."""
    items = plan(SynthConfig(out=folder, **BENCHMARKS[folder]))["train"]
    asr = [line["target"] for item in items for line in item.lines if line["task"] == "asr"]
    return len(asr), len(set(asr))


@pytest.mark.parametrize(
    "name, marker",
    [
        ("demo", "demo-table"),
        ("first_demo", "first-demo-table"),
        ("long_run", "long-table"),
        ("demo_compress", "compress-table"),
        ("long_ctc", "long-ctc-table"),
        ("long_ctc2", "long-ctc2-table"),
        ("long_ctc3", "long-ctc3-table"),
        ("long_ctc4", "long-ctc4-table"),
        ("long_ctc5", "long-ctc5-table"),
        ("long_ctc6", "long-ctc6-table"),
        ("demo_open_english", "open-english-table"),
        ("demo_summary", "summary-table"),
    ],
)
def test_readme_demo_tables_are_generated_from_the_committed_results(name, marker) -> None:
    result = json.loads((RECIPE / "results" / f"{name}.json").read_text())
    for key in ("command", "date", "commit", "machine"):
        assert result[key]
    readme = (REPO / "README.md").read_text()
    start, end = f"<!-- {marker}:start -->\n", f"\n<!-- {marker}:end -->"
    assert readme.split(start)[1].split(end)[0] == readme_table(result)


def test_readme_compress_prose_matches_the_committed_results() -> None:
    """Reading the CTC path at the demo's budget: ASR ties the demo (within 2 points), intents
    above the demo's, speech/non-speech below 100, open vocabulary above 95, more text answers
    kept (3 of 8 against 1)."""
    demo, path = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("first_demo", "demo_compress")
    )
    assert "module.model.ctc_compress_detach=true" in path["command"]
    assert abs(path["tasks"]["asr"]["wer"] - demo["tasks"]["asr"]["wer"]) < 2
    assert path["tasks"]["ic"]["accuracy"] > demo["tasks"]["ic"]["accuracy"]
    assert path["tasks"]["sns"]["uar"] < 100 and path["open_vocab"]["asr"]["wer"] > 95
    skills = path["text_skills"]
    assert skills["trained_accuracy"] == 37.5 and demo["text_skills"]["trained_accuracy"] == 12.5
    assert skills["base_accuracy"] == 62.5


def test_readme_long_ctc_prose_matches_the_committed_results() -> None:
    """The better hour: the same training budget as the longer run (within 10 %), its three
    changes in the command, and the figures the prose quotes, each from the two JSONs."""
    old, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("long_run", "long_ctc")
    )
    for knob in ("align.steps=4800", "mixture=synthetic_real", "ctc_compress_detach=true"):
        assert knob in new["command"]
    minutes = [sum(s["seconds"] for s in r["stages"]) / 60 for r in (old, new)]
    assert abs(minutes[1] - minutes[0]) < 0.1 * minutes[0]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"({minutes[0]:.0f} minutes of training against this run's {minutes[1]:.0f})" in readme
    steps = {st["stage"]: st for st in new["stages"]}
    assert [steps[k]["steps"] for k in ("align", "lora_warmup", "multitask")] == [4800, 300, 1200]
    assert f"(4,800 steps, {steps['align']['seconds'] / 60:.1f} minutes," in readme
    assert "then 300 warm-up and 1,200 multitask steps" in readme
    t, o = new["tasks"], old["tasks"]
    claims = [
        ("asr", "wer", "ASR {} -> {} % WER", ".1f"),
        ("ic", "accuracy", "intents {} -> {} %", ".0f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1", ".1f"),
        ("st", "bleu", "translation {} -> {} BLEU", ".1f"),
        ("kwe", "f1", "keyword extraction {} -> {} F1", ".1f"),
        ("asc", "uar", "sentiment {} -> {} UAR", ".1f"),
    ]
    assert_quotes_changes(readme, o, t, claims)
    assert t["asr"]["wer"] < o["asr"]["wer"] and t["ic"]["accuracy"] > o["ic"]["accuracy"]
    assert f"the open-vocabulary set stays at {new['open_vocab']['asr']['wer']:.1f} % WER" in readme
    assert (
        new["text_skills"]["trained_accuracy"] == 0 and "text questions are lost (0 of 8)" in readme
    )
    clip = (f"gender {t['gr']['uar']:.1f}, speaker count {t['sc']['uar']:.1f}, accent "
            f"{t['ac']['uar']:.1f}, emotion {t['er']['uar']:.1f} UAR")  # fmt: skip
    assert clip in readme


def test_readme_continued_prose_matches_the_committed_results() -> None:
    """The better hour continued: 1,000 more multitask steps, the LoRA gated, the figures the
    prose quotes against the better hour's, and the text answers back to the base's."""
    old, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("long_ctc", "long_ctc2")
    )
    assert "trainer.max_steps=7300" in new["command"] and "audio_gated=true" in new["command"]
    steps = {st["stage"]: st["steps"] for st in new["stages"]}
    assert (
        steps["multitask"] - {st["stage"]: st["steps"] for st in old["stages"]}["multitask"] == 1000
    )
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "went on for 1,000 more multitask steps" in readme
    t, o = new["tasks"], old["tasks"]
    claims = [
        ("sc", "uar", "speaker count {} -> {} UAR", ".1f"),
        ("gr", "uar", "gender {} -> {}", ".1f"),
        ("ac", "uar", "accent {} -> {}", ".1f"),
        ("er", "uar", "emotion {} -> {}", ".1f"),
        ("st", "bleu", "translation {} -> {} BLEU", ".1f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1", ".1f"),
        ("sns", "uar", "speech/non-speech {} -> {} UAR", ".1f"),
        ("asr", "wer", "ASR {} -> {} % WER", ".1f"),
    ]
    assert_quotes_changes(readme, o, t, claims)
    assert t["sc"]["uar"] >= 90 and "the first clip-level target met" in readme
    skills, lost = new["text_skills"], old["text_skills"]
    assert skills["trained_accuracy"] == skills["base_accuracy"]
    kept = round(skills["trained_accuracy"] * skills["n"] / 100)
    assert f"text answers come back ({lost['trained_accuracy']:.0f} -> {kept} of 8" in readme
    weights = yaml.safe_load((REPO / "conf" / "mixture" / "synthetic_real.yaml").read_text())
    kws = steps["multitask"] * weights["kws"] / sum(weights.values())
    assert (
        f"Keyword spotting stays at chance ({t['kws']['accuracy']:.1f} %) after about {kws:.0f} "
        f"steps of it in all, and the open-vocabulary set at {new['open_vocab']['asr']['wer']:.1f}"
    ) in readme


def test_readme_catch_up_prose_matches_the_committed_results() -> None:
    """The second continuation (catch-up mixture, open-English ASR lines): the gains and the
    ASR losses the prose quotes, the keyword-spotting steps and the open-English share of clips
    it derives from the configs, and the model in the box still the first continuation."""
    old, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("long_ctc2", "long_ctc3")
    )
    command = new["command"]
    assert "trainer.max_steps=8300" in command and "mixture=synthetic_real_catchup" in command
    assert "data/varied_asr/varied_asr.jsonl" in command and "varied_asr.py" in new["note"]
    steps = {st["stage"]: st["steps"] for st in new["stages"]}
    before = {st["stage"]: st["steps"] for st in old["stages"]}["multitask"]
    assert steps["multitask"] - before == 1000
    readme = " ".join((REPO / "README.md").read_text().split())
    t, o = new["tasks"], old["tasks"]
    claims = [
        ("kws", "accuracy", "keyword spotting leaves chance, {} -> {} %", ".1f"),
        ("ic", "accuracy", "intents {} -> {} %", ".1f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1", ".1f"),
        ("st", "bleu", "translation {} -> {} BLEU", ".1f"),
        ("ac", "uar", "accent {} -> {}", ".1f"),
        ("er", "uar", "emotion {} -> {} UAR", ".1f"),
        ("asr", "wer", "ASR worse: {} -> {} % WER", ".1f"),
    ]
    assert_quotes_changes(readme, o, t, claims)
    assert t["asr"]["wer"] > o["asr"]["wer"] and t["kws"]["accuracy"] > 80
    ov_old, ov_new = old["open_vocab"]["asr"]["wer"], new["open_vocab"]["asr"]["wer"]
    assert f"{ov_old:.1f} -> {ov_new:.1f} % on the open-vocabulary set" in readme
    assert ov_new > ov_old
    mixtures = REPO / "conf" / "mixture"
    catchup = yaml.safe_load((mixtures / "synthetic_real_catchup.yaml").read_text())
    first = yaml.safe_load((mixtures / "synthetic_real.yaml").read_text())
    kws_now = 1000 * catchup["kws"] / sum(catchup.values())
    kws_before = before * first["kws"] / sum(first.values())
    in_all = kws_before + kws_now
    assert f"after about {kws_now:.0f} more steps of it ({in_all:.0f} in all" in readme
    varied = len((RECIPE / "varied_asr_sentences.txt").read_text().splitlines())
    asr_lines = asr_sentences("data/synthetic_small")[0] + varied
    share = catchup["asr"] / sum(catchup.values()) * varied / asr_lines
    assert f"about {100 * share:.0f} % of the clips (ASR has {catchup['asr']:.1f} of" in readme
    assert f"mixture's {sum(catchup.values()):.1f}" in readme and f"{asr_lines:,} lines" in readme
    assert "The next 500 steps dropped them again (below)." in readme


def test_readme_catch_up_on_the_benchmark_prose_matches_the_committed_results() -> None:
    """The 500 steps after the open-English ones: the changes the prose quotes against the
    earlier model in the box, the target it meets, and that it is the model in the box now."""
    old, last, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("long_ctc2", "long_ctc3", "long_ctc4")
    )
    assert "trainer.max_steps=8800" in new["command"] and "varied_asr" not in new["command"]
    steps = {st["stage"]: st["steps"] for st in new["stages"]}["multitask"]
    assert steps - {st["stage"]: st["steps"] for st in last["stages"]}["multitask"] == 500
    readme = " ".join((REPO / "README.md").read_text().split())
    t, o = new["tasks"], old["tasks"]
    claims = [
        ("asr", "wer", "ASR {} -> {} % WER, keyword", ".1f"),
        ("kws", "accuracy", "spotting {} -> {} %", ".1f"),
        ("sns", "uar", "speech/non-speech {} -> {} UAR (target met)", ".1f"),
        ("sc", "uar", "speaker count {} -> {}, gender", ".1f"),
        ("gr", "uar", "gender {} -> {} and accent", ".1f"),
        ("ac", "uar", "accent {} -> {} UAR, translation", ".1f"),
        ("st", "bleu", "translation {} -> {} BLEU, slots", ".1f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1; intents", ".1f"),
        ("ic", "accuracy", "intents fell, {} -> {} %", ".1f"),
        ("er", "uar", "emotion held ({} -> {} UAR)", ".1f"),
    ]
    assert_quotes_changes(readme, o, t, claims)
    assert t["sns"]["uar"] >= 98 and t["ic"]["accuracy"] < o["ic"]["accuracy"]
    skills = new["text_skills"]
    assert skills["trained_accuracy"] == skills["base_accuracy"]
    assert f"stays at {new['open_vocab']['asr']['wer']:.1f} % WER. It was the model" in readme
    box = json.loads((RECIPE / "model" / "result.json").read_text())
    assert new["command"] in box["training_command"]
    assert "varied_asr.py --out data/varied_asr" in box["training_command"]


def test_readme_realigned_prose_matches_the_committed_results() -> None:
    """The aligner's 3,000 CTC steps on four times the lines, then 750 multitask steps: the
    changes the prose quotes against the earlier model in the box, the targets it meets, the
    sentence counts of both benchmarks, and the model in the box's chain of commands."""
    old, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("long_ctc4", "long_ctc5")
    )
    assert "paths.data_dir=data/synthetic_medium" in new["command"]
    assert (
        "+llm.adapter_paths={default:/work/runs_v2/long_ctc4/model/adapters/default}"
        in (new["command"])
    )
    assert [(st["stage"], st["steps"]) for st in new["stages"]] == [("multitask", 750)]
    readme = " ".join((REPO / "README.md").read_text().split())
    t, o = new["tasks"], old["tasks"]
    claims = [
        ("asr", "wer", "ASR {} -> {} % WER (the target is 10)", ".1f"),
        ("st", "bleu", "translation {} -> {} BLEU, intents", ".1f"),
        ("ic", "accuracy", "intents {} -> {} % and slots", ".1f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1 (three more targets met)", ".1f"),
        ("kws", "accuracy", "spotting {} -> {} %, gender", ".1f"),
        ("gr", "uar", "gender {} -> {}, accent", ".1f"),
        ("ac", "uar", "accent {} -> {} and emotion", ".1f"),
        ("er", "uar", "emotion {} -> {} UAR;", ".1f"),
        ("sc", "uar", "speaker count {} -> {} UAR", ".1f"),
        ("sns", "uar", "speech/non-speech {} -> {}, and", ".1f"),
    ]
    assert_quotes_changes(readme, o, t, claims)
    met = [(k, m, goal) for k, m, goal in (("st", "bleu", 40), ("ic", "accuracy", 90),
                                           ("sf", "slu_f1", 80))]  # fmt: skip
    assert all(t[k][m] >= goal > o[k][m] for k, m, goal in met)
    weight = yaml.safe_load((REPO / "conf" / "mixture" / "synthetic_real_catchup.yaml").read_text())
    assert f"({t['sc']['n']} test lines; weight {weight['sc']})" in readme
    assert new["text_skills"]["trained_accuracy"] == new["text_skills"]["base_accuracy"]
    assert f"stays at {new['open_vocab']['asr']['wer']:.1f} % WER: four times" in readme
    lines, small = asr_sentences("data/synthetic_small")
    medium_lines, medium = asr_sentences("data/synthetic_medium")
    assert f"the {small:,} sentences of its {lines:,} training lines" in readme
    assert f"four times the training lines ({medium:,} distinct sentences;" in readme
    assert medium_lines == 4 * lines
    box = json.loads((RECIPE / "model" / "result.json").read_text())
    for step in ("speechllm-synth out=data/synthetic_medium preset=medium n_dev=300 n_test=300",
                 "curriculum.stages.align.steps=3000", old["command"]):  # fmt: skip
        assert step in box["training_command"]
    assert f"check WER: {box['check']['wer']:.1f} on those clips" in readme


def test_readme_open_english_prose_matches_the_committed_results() -> None:
    """The demo's recipe with the open-English lines from its first step: the changes the prose
    quotes against the demo, the held-out gap, and the command its note gives for today's tree
    composes to what ran (the lines beside the benchmark's, speech/non-speech at 1.0)."""
    old, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("demo", "demo_open_english")
    )
    assert new["experiment"] == old["experiment"] == "synthetic_real_ctc"
    readme = " ".join((REPO / "README.md").read_text().split())
    claims = [
        ("asr", "wer", "ASR {} -> {} % WER", ".1f"),
        ("sns", "uar", "({} -> {} UAR with its weight 1.0)", ".1f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1", ".1f"),
        ("kwe", "f1", "keyword extraction {} -> {} F1", ".1f"),
    ]
    assert_quotes_changes(readme, old["tasks"], new["tasks"], claims)
    ov = (old["open_vocab"]["asr"]["wer"], new["open_vocab"]["asr"]["wer"])
    assert f"open-vocabulary set {ov[0]:.1f} -> {ov[1]:.1f} %" in readme and ov[1] > ov[0]
    split = new["instruction_splits"]["asr"]
    gap = abs(split["heldout"]["wer"] - split["seen"]["wer"])
    assert f"held-out instructions now {gap:.0f} points off seen" in readme
    assert new["tasks"]["asr"]["wer"] > old["tasks"]["asr"]["wer"]
    varied = len((RECIPE / "varied_asr_sentences.txt").read_text().splitlines())
    assert f"With {varied:,} sentences (under a quarter of the ASR lines)" in readme
    assert varied / (asr_sentences("data/synthetic_small")[0] + varied) < 0.25
    command = new["note"].split("From a later commit the same run is: ")[1]
    overrides = [w.strip("'") for w in command.split("run_demo.py")[1].split()[2:]]
    from speechllm.config import compose

    cfg = compose(["experiment=synthetic_real_ctc", *overrides])
    assert list(cfg.data.train_manifests)[1] == "data/varied_asr/varied_asr.jsonl"
    assert cfg.mixture.sns == 1.0 and "varied_asr.py --out data/varied_asr" in command


def test_readme_four_times_the_lines_prose_matches_the_committed_results() -> None:
    """The demo's recipe on data/synthetic_medium from its first step: the changes the prose
    quotes against the demo, the aligner's own path, the CTC stages' last losses, and the
    command its note gives for today's tree composes to what ran."""
    old, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("demo", "demo_medium")
    )
    assert new["experiment"] == old["experiment"] == "synthetic_real_ctc"
    readme = " ".join((REPO / "README.md").read_text().split())
    claims = [
        ("asr", "wer", "ASR {} -> {} % WER: seen", ".1f"),
        ("sns", "uar", "Speech/non-speech {} -> {} UAR", ".1f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1;", ".1f"),
    ]
    assert_quotes_changes(readme, old["tasks"], new["tasks"], claims)
    seen, held = (
        [r["instruction_splits"]["asr"][s]["wer"] for r in (old, new)] for s in ("seen", "heldout")
    )
    assert f"{seen[0]:.1f}" == f"{seen[1]:.1f}"
    assert f"instructions hold ({seen[0]:.1f} both), held-out ones fall {held[0]:.1f} -> " in readme
    assert f"{held[1]:.1f}, and the aligner's own path scores {new['ctc_path']['wer']:.1f} %" in (
        readme
    )
    loss = [{st["stage"]: st["final_loss"] for st in r["stages"]}["align"] for r in (new, old)]
    assert f"ended at {loss[0]:.3f} loss per token, the demo's at {loss[1]:.3f})" in readme
    ov = (old["open_vocab"]["asr"]["wer"], new["open_vocab"]["asr"]["wer"])
    assert f"open-vocabulary set {ov[0]:.1f} -> {ov[1]:.1f} % WER" in readme
    command = new["note"].split("From a later commit the same run is: ")[1]
    overrides = command.split("run_demo.py")[1].split()[2:]
    from speechllm.config import compose

    cfg = compose(["experiment=synthetic_real_ctc", *overrides])
    steps = {name: cfg.curriculum.stages[name].steps for name in ("align", "lora_warmup")}
    assert cfg.paths.data_dir == "data/synthetic_medium" and steps == {
        "align": 4000,
        "lora_warmup": 120,
    }
    assert cfg.trainer.max_steps - sum(steps.values()) == sum(
        st["steps"] for st in new["stages"] if st["stage"] == "multitask"
    )


def test_readme_restored_weights_prose_matches_the_committed_results() -> None:
    """500 more steps with speaker count and speech/non-speech weighted up: the changes the
    prose quotes, the two targets met, and that it is the model in the box now."""
    old, new = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("long_ctc5", "long_ctc6")
    )
    assert "trainer.max_steps=1250" in new["command"]
    assert "mixture.sc=0.6 mixture.sns=1.0" in new["command"]
    assert [(st["stage"], st["steps"]) for st in new["stages"]] == [("multitask", 1250)]
    readme = " ".join((REPO / "README.md").read_text().split())
    t, o = new["tasks"], old["tasks"]
    claims = [
        ("kws", "accuracy", "keyword spotting {} -> {} %", ".1f"),
        ("sc", "uar", "speaker count {} -> {} UAR (two more targets met)", ".1f"),
        ("st", "bleu", "translation {} -> {} BLEU, slots", ".1f"),
        ("sf", "slu_f1", "slots {} -> {} SLU-F1,", ".1f"),
        ("sns", "uar", "speech/non-speech {} -> {} UAR; ASR", ".1f"),
        ("asr", "wer", "ASR {} -> {} % WER, gender", ".1f"),
        ("gr", "uar", "gender {} -> {} and emotion", ".1f"),
        ("er", "uar", "emotion {} -> {} UAR; the text", ".1f"),
    ]
    assert_quotes_changes(readme, o, t, claims)
    assert t["kws"]["accuracy"] >= 90 > o["kws"]["accuracy"]
    assert t["sc"]["uar"] >= 90 > o["sc"]["uar"]
    assert new["text_skills"]["trained_accuracy"] == new["text_skills"]["base_accuracy"]
    assert "the text answers are kept. This run is the model in the box." in readme
    box = json.loads((RECIPE / "model" / "result.json").read_text())
    assert box["run_results"]["command"] == new["command"]
    assert box["training_command"].endswith(new["command"])
    assert f"check WER: {box['check']['wer']:.1f} on those clips" in readme


def test_readme_summary_prose_matches_the_committed_results() -> None:
    """Aligning the utterance embeddings at the first recipe's budget: the clip-level tasks stay
    within 6 points of its (none reaches 60 UAR), as the prose says, with the figures quoted."""
    demo, summary = (
        json.loads((RECIPE / "results" / f"{name}.json").read_text())
        for name in ("first_demo", "demo_summary")
    )
    assert "--experiment synthetic_real_summary" in summary["command"]
    assert {st["stage"]: st["steps"] for st in summary["stages"]}["align"] == 2000
    assert "a stage 1 of 2,000 steps" in " ".join((REPO / "README.md").read_text().split())
    t, o = summary["tasks"], demo["tasks"]
    clip = ("gr", "sc", "ac", "er")
    assert all(abs(t[k]["uar"] - o[k]["uar"]) < 6 and t[k]["uar"] < 60 for k in clip)
    readme = " ".join((REPO / "README.md").read_text().split())
    assert (
        f"gender {t['gr']['uar']:.1f}, speaker count {t['sc']['uar']:.1f}, accent "
        f"{t['ac']['uar']:.1f} and emotion {t['er']['uar']:.1f} UAR, against the first recipe's "
        f"{o['gr']['uar']:.1f}, {o['sc']['uar']:.1f}, {o['ac']['uar']:.1f} and "
        f"{o['er']['uar']:.1f}"
    ) in readme
    split = summary["instruction_splits"]["asr"]
    gap = abs(split["seen"]["wer"] - split["heldout"]["wer"])
    assert (
        f"ASR lands at {t['asr']['wer']:.1f} % WER against the first recipe's "
        f"{o['asr']['wer']:.1f} (one seed each; its seen and held-out instructions differ by "
        f"{gap:.0f} points)"
    ) in readme


def test_readme_alignment_table_is_generated_from_the_committed_results() -> None:
    result = json.loads((RECIPE / "results" / "align_ablation.json").read_text())
    assert {"command", "date", "commit", "machine"} <= set(result) and len(result["arms"]) == 2
    readme = (REPO / "README.md").read_text()
    start, end = "<!-- align-table:start -->\n", "\n<!-- align-table:end -->"
    assert readme.split(start)[1].split(end)[0] == align_table(result)
    plain = result["arms"]["plain: LM loss through the frozen LLM (60 steps)"]
    top = plain["most_common_answer"]
    prose = " ".join(readme.split(end)[1].split("\n\n")[1].split())
    assert f"answers {top['count']} of the {plain['n']} clips" in prose
    assert f'("{top["text"]}"), {plain["distinct_answers"]} distinct answers' in prose


@pytest.mark.parametrize(
    "argv, folder, benchmark",
    [
        ([], "data/synthetic_small", "data/synthetic_small"),  # make demo's experiment
        (
            ["paths.data_dir=data/synthetic_medium"],
            "data/synthetic_medium",
            "data/synthetic_medium",
        ),
        (
            ["--data", "data/synthetic_small", "paths.data_dir=data/synthetic_medium"],
            "data/synthetic_small",
            "data/synthetic_small",
        ),  # fmt: skip
        (
            ["--data", "elsewhere", "paths.data_dir=data/synthetic_medium"],
            "elsewhere",
            "data/synthetic_medium",
        ),  # fmt: skip
    ],
)
def test_the_demo_reads_and_writes_the_benchmark_its_folder_names(
    argv: list[str], folder: str, benchmark: str
) -> None:
    """A folder the recipes know is always that benchmark (never one's name holding the other's
    lines); another folder gets the experiment's."""
    from run_demo import benchmark_of, parse_args

    data, synth = benchmark_of(parse_args(argv))
    assert str(data) == folder and synth == BENCHMARKS[benchmark]
    assert benchmark_of(parse_args(["--preset", "smoke"]))[1]["preset"] == "tiny"
