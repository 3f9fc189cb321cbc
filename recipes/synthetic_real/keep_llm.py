"""What each keep-the-LLM option buys, on the real-bases demo recipe at one budget.

All arms start from one CTC-aligned checkpoint (the demo's stage 1, trained here once) and then
train the same LoRA warm-up and multitask steps; they differ only in the option switched on::

    baseline  the demo's curriculum as it is
    kd        + distillation from the text LLM reading the transcript (objective kd: 1.0)
    text      + text-only instruction items in the mixture (text_instruct.jsonl, the base
              LLM's own answers to general questions)
    gated     + audio-gated LoRA (text-only inputs meet the untouched LLM)
    all       all three
    compress  the LLM reads the audio along the CTC aligner's greedy path (ctc_compress: blank
              frames dropped, repeats merged, posterior-weighted token embeddings), an
              alignment idea of issue 33 measured at the same budget
    compress_detach  the same path read without gradients: only the CTC loss moves the
              alignment

Each arm is then scored on the test split's seen and held-out instructions, the unseen tasks
and the text questions (base vs trained), and its stages' seconds per step are kept::

    python recipes/synthetic_real/keep_llm.py --record        # -> results/keep_llm.json
    python recipes/synthetic_real/keep_llm.py --arms baseline kd --parallel 1
    python recipes/synthetic_real/keep_llm.py --align-steps 4800 --arms compress_detach \
        --parallel 1 --eval-limit 250 --out runs/keep_llm_align4800 \
        --record keep_llm_align4800   # a 4x longer CTC stage: results/keep_llm_align4800.json

Arms run ``--parallel`` at a time, each on ``2 // parallel`` threads, so arms that ran side by
side saw the same machine; their step times compare within a pair.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEXT = "recipes/synthetic_real/text_instruct.jsonl"

ARMS: dict[str, list[str]] = {
    "baseline": [],
    "kd": [
        "+curriculum.stages.lora_warmup.objective.kd=1.0",
        "+curriculum.stages.multitask.objective.kd=1.0",
    ],
    "text": [
        f"data.text_manifests=[{TEXT}]",
        "+curriculum.stages.lora_warmup.tasks.text=0.15",  # ~13 % of warm-up batches
        "+mixture.text=1.0",  # ~10 % of multitask batches
    ],
    "gated": ["module.model.audio_gated=true"],
}
ARMS["all"] = [o for arm in ("kd", "text", "gated") for o in ARMS[arm]]
ARMS["compress"] = ["module.model.ctc_compress=true"]
ARMS["compress_detach"] = [*ARMS["compress"], "module.model.ctc_compress_detach=true"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--out", type=Path, default=Path("runs/keep_llm"))
    p.add_argument("--data", type=Path, default=Path("data/synthetic_small"))
    p.add_argument("--align-steps", type=int, default=1200, help="the shared CTC stage's steps")
    p.add_argument("--warmup-steps", type=int, default=100, help="LoRA warm-up steps per arm")
    p.add_argument("--multitask-steps", type=int, default=150, help="multitask steps per arm")
    p.add_argument("--parallel", type=int, default=2, help="arms trained at once")
    p.add_argument("--eval-limit", type=int, default=150, help="lines per test manifest")
    p.add_argument("--unseen", type=int, default=30, help="recordings for the unseen tasks")
    p.add_argument(
        "--record", nargs="?", const="keep_llm", default=None, metavar="NAME",
        help="write recipes/synthetic_real/results/NAME.json",
    )  # fmt: skip
    p.add_argument("--note", help="with --record: how the arms were run (kept in the JSON)")
    p.add_argument("--evaluate-arm", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def train_command(run: Path, data: Path, overrides: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "speechllm.cli.train", "experiment=synthetic_real",
        f"paths.data_dir={data}", f"hydra.run.dir={run}", "callbacks.progress.refresh_rate=0",
        *overrides,
    ]  # fmt: skip


def run_logged(cmd: list[str], log: Path, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        done = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{cmd[2]} failed ({done.returncode}); see {log}")


def budget(args: argparse.Namespace) -> list[str]:
    total = args.align_steps + args.warmup_steps + args.multitask_steps
    return [
        f"curriculum.stages.align.steps={args.align_steps}",
        f"curriculum.stages.lora_warmup.steps={args.warmup_steps}",
        f"trainer.max_steps={total}",
        f"trainer.val_check_interval={args.warmup_steps + args.multitask_steps}",
        "trainer.limit_val_batches=2",
        "callbacks.checkpoint.every_n_train_steps=50",
    ]


def align(args: argparse.Namespace) -> Path:
    """The shared stage 1 (CTC), trained once: its checkpoint at the last align step."""
    run = args.out / "align"
    run.mkdir(parents=True, exist_ok=True)
    ckpt = run / "checkpoints" / f"step={args.align_steps}.ckpt"
    if not ckpt.is_file():
        overrides = [
            f"curriculum.stages.align.steps={args.align_steps}",
            f"trainer.max_steps={args.align_steps}",
            f"trainer.val_check_interval={args.align_steps}",
        ]
        run_logged(train_command(run, args.data, overrides), run / "train.log", threads=2)
    return ckpt


def train_arm(args: argparse.Namespace, arm: str, start: Path, threads: int) -> Path:
    run = args.out / arm
    checkpoints = run / "checkpoints"
    if finished(run, args.align_steps + args.warmup_steps + args.multitask_steps):
        return run
    if not checkpoints.is_dir():  # a new arm starts from the shared aligned checkpoint
        checkpoints.mkdir(parents=True)
        shutil.copy2(start, checkpoints / start.name)
    cmd = train_command(run, args.data, [*budget(args), *ARMS[arm]])
    run_logged(cmd, run / "train.log", threads)
    from speechllm.provenance import provenance

    stamp = {**provenance("recipes/synthetic_real/keep_llm.py"), "train_command": cmd[1:]}
    (run / "provenance.json").write_text(json.dumps(stamp, indent=2))
    return run


def finished(run: Path, total: int) -> bool:
    """The arm's last checkpoint is at the end of its budget (a rerun only records)."""
    from speechllm.training.resume import load_checkpoint

    last = run / "checkpoints" / "last.ckpt"
    return last.is_file() and int(load_checkpoint(str(last))["global_step"]) >= total


def evaluate_arm(args: argparse.Namespace, run: Path) -> dict[str, Any]:
    """Export, then test (seen and held-out instructions), unseen tasks and text questions."""
    from speechllm.evaluation.decoding import DecodingConfig
    from speechllm.evaluation.run import evaluate
    from speechllm.evaluation.text_skills import text_skills
    from speechllm.models import SpeechLLM
    from speechllm.models.pretrained import export_checkpoint

    model_dir = export_checkpoint(run / "checkpoints" / "last.ckpt", run / "model")
    model = SpeechLLM.from_pretrained(model_dir)
    data = args.data
    metrics = evaluate(
        model,
        [str(data / "test.jsonl"), str(data / "test_heldout_instructions.jsonl")],
        run / "eval",
        DecodingConfig(max_new_tokens=48),
        max_batch_seconds=120.0,
        limit=args.eval_limit,
        unseen=args.unseen,
    )
    metrics["text_skills"] = text_skills(model)
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def evaluated(run: Path) -> bool:
    """The arm's evaluation is there and scored its final checkpoint (a rerun skips it)."""
    metrics, last = run / "eval" / "metrics.json", run / "checkpoints" / "last.ckpt"
    return metrics.is_file() and last.is_file() and metrics.stat().st_mtime > last.stat().st_mtime


def seconds_per_step(run: Path) -> dict[str, float]:
    stages = json.loads((run / "stages.json").read_text())
    return {s["stage"]: round(s["seconds"] / s["steps"], 2) for s in stages if s["steps"]}


def arm_result(args: argparse.Namespace, arm: str, threads: int) -> dict[str, Any]:
    run = args.out / arm
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    return {
        "overrides": ARMS[arm],
        "threads": threads,
        "trained_at_commit": json.loads((run / "provenance.json").read_text())["commit"],
        "seconds_per_step": seconds_per_step(run),
        "tasks": metrics["tasks"],
        "instruction_splits": metrics.get("instruction_splits"),
        "unseen_tasks": metrics.get("unseen_tasks"),
        "text_skills": metrics["text_skills"],
    }


def record(args: argparse.Namespace, arms: dict[str, Any], minutes: float) -> Path:
    from speechllm.provenance import provenance

    argv = sys.argv[1:]
    if "--note" in argv:  # the note is kept beside the command, not in it
        del argv[argv.index("--note") : argv.index("--note") + 2]
    result = {
        **provenance("recipes/synthetic_real/keep_llm.py", argv),
        "minutes": round(minutes, 1),
        "budget": {
            "align": args.align_steps,
            "lora_warmup": args.warmup_steps,
            "multitask": args.multitask_steps,
            "seeds": 1,
        },
        "arms": arms,
        "file": f"recipes/synthetic_real/results/{args.record}.json",
        **({"note": args.note} if args.note else {}),
    }
    path = HERE / "results" / f"{args.record}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


HEADLINE = {"asr": "wer", "st": "bleu", "ic": "accuracy", "sf": "slu_f1", "kws": "accuracy",
            "kwe": "f1"}  # fmt: skip
UNSEEN = ("word_count", "is_question", "first_word", "three_word_summary", "reply")
"""The unseen tasks in the table, each by its primary score (``reply``: the share of replies
that merely repeat the transcript, lower is better)."""


def readme_table(result: dict[str, Any]) -> str:
    """The recipe README's keep-the-LLM table, from ``results/keep_llm.json``."""
    head = (
        "| arm | ASR WER (seen / held-out) | mean held-out gap | unseen tasks "
        f"({', '.join(UNSEEN)}) | text questions (base {{base}}) | s/step (warm-up, multitask) |"
    )
    rows = []
    base = None
    for arm, r in result["arms"].items():
        splits = r["instruction_splits"] or {}
        asr = splits.get("asr", {})
        gaps = []
        for task, split in splits.items():
            key = HEADLINE.get(task, "uar")
            seen, held = (split.get(s, {}).get(key) for s in ("seen", "heldout"))
            if seen is not None and held is not None:
                gaps.append(abs(seen - held))
        unseen = (r.get("unseen_tasks") or {}).get("tasks", {})
        scores = " / ".join(_unseen_score(unseen.get(name)) for name in UNSEEN)
        skills = r["text_skills"]
        base = skills["base_accuracy"]
        steps = r["seconds_per_step"]
        rows.append(
            f"| {arm} | {r['tasks']['asr']['wer']:.1f} ({asr['seen']['wer']:.1f} / "
            f"{asr['heldout']['wer']:.1f}) | {sum(gaps) / max(len(gaps), 1):.1f} | {scores} | "
            f"{skills['trained_accuracy']:.0f} | {steps.get('lora_warmup', 0):.2f}, "
            f"{steps.get('multitask', 0):.2f} |"
        )
    budget = result["budget"]
    trained: dict[str, list[str]] = {}
    for arm, r in result["arms"].items():
        trained.setdefault(r.get("trained_at_commit", "-")[:10], []).append(arm)
    at = "; ".join(f"{', '.join(arms)} at {commit}" for commit, arms in trained.items())
    return "\n".join([head.format(base=f"{base:.0f}"), "|---|---|---|---|---|---|", *rows]) + (
        f"\n\n{budget['lora_warmup']} warm-up + {budget['multitask']} multitask steps after "
        f"{budget['align']} CTC steps, {budget['seeds']} seed; arms trained {at}; recorded "
        f"{result['date']} on {result['machine']} at commit {result['commit'][:10]} "
        f"(`{result['command']}`; `{result['file']}`)."
    )


def gap_table(result: dict[str, Any]) -> str:
    """Each task's headline metric per arm on seen / held-out instructions (the README's
    second table, from the same JSON)."""
    arms = result["arms"]
    tasks = sorted({t for r in arms.values() for t in (r["instruction_splits"] or {})})
    rows = ["| task (metric) | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for task in tasks:
        key = HEADLINE.get(task, "uar")
        cells = []
        for r in arms.values():
            split = (r["instruction_splits"] or {}).get(task, {})
            seen, held = (split.get(s, {}).get(key) for s in ("seen", "heldout"))
            cells.append("-" if seen is None or held is None else f"{seen:.1f} / {held:.1f}")
        rows.append(f"| {task} ({key}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _unseen_score(task: dict[str, Any] | None) -> str:
    if not task or task.get(task["primary"]) is None:
        return "-"
    return f"{task[task['primary']]:.0f}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.evaluate_arm:
        evaluate_arm(args, args.evaluate_arm)
        return
    start_time = time.perf_counter()
    from speechllm.models.fetch import fetch

    for name in ("whisper-tiny.en", "smollm2"):
        fetch(name)
    if not (args.data / "test_heldout_instructions.jsonl").is_file():
        from speechllm.synth import SynthConfig, generate

        generate(SynthConfig(out=str(args.data), preset="small", n_train=5000, n_dev=300,
                             n_test=300, workers=2))  # fmt: skip
    print("=== align (shared) ===", flush=True)
    start = align(args)
    threads = max(1, 2 // args.parallel)

    def one(arm: str) -> None:
        print(f"=== {arm}: train ===", flush=True)
        run = train_arm(args, arm, start, threads)
        if evaluated(run):
            print(f"=== {arm}: evaluated (eval/metrics.json is newer than its last checkpoint) ===")
        else:
            print(f"=== {arm}: evaluate ===", flush=True)
            cmd = [sys.executable, __file__, f"--evaluate-arm={run}", f"--data={args.data}",
                   f"--eval-limit={args.eval_limit}", f"--unseen={args.unseen}"]  # fmt: skip
            run_logged(cmd, run / "eval.log", threads)
        print(f"=== {arm}: done ===", flush=True)

    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(one, args.arms))
    arms = {arm: arm_result(args, arm, threads) for arm in args.arms}
    result = {"arms": arms, "budget": {"align": args.align_steps, "lora_warmup": args.warmup_steps,
              "multitask": args.multitask_steps, "seeds": 1}, "date": "-", "machine": "-",
              "commit": "-", "command": "-", "file": "-"}  # fmt: skip
    print(readme_table(result))
    print(gap_table(result))
    if args.record:
        print(f"recorded {record(args, arms, (time.perf_counter() - start_time) / 60)}")


if __name__ == "__main__":
    main()
