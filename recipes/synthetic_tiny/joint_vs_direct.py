"""Joint vs direct training for IC, SF, KWS and ASC on the demo's benchmark: same bases, same
steps, same mixture; only the targets differ.

::

    direct   ic line -> "set_alarm"
    joint    ic line -> "ASR: wake me up at eight | ic: set_alarm"   (data.joint_tasks)

Both arms train ``experiment=synthetic_tiny`` with the mixture cut to ASR plus the four tasks,
then decode the test split's lines of those tasks (the joint arm with ``decoding.joint`` on
them, which also reports the WER of the transcripts it wrote). Prints the table and writes it
to ``--results`` as JSON.

    python recipes/synthetic_tiny/joint_vs_direct.py --bases runs/demo   # the demo's bases
    python recipes/synthetic_tiny/joint_vs_direct.py --bootstrap-minutes 3 --steps 300  # bounded
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run_demo import PRESETS, bootstrap  # noqa: E402,I001

from speechllm.provenance import provenance  # noqa: E402
from speechllm.tasks import get_task  # noqa: E402

TASKS = ("ic", "sf", "kws", "asc")
MIXTURE = "{asr: 2.0, ic: 1.0, sf: 1.0, kws: 1.0, asc: 1.0}"
"""ASR keeps the largest share, as in the demo's mixture: joint targets start with it."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="data/synthetic_small", help="benchmark (speechllm-synth)")
    p.add_argument("--out", default="runs/joint_vs_direct", help="both runs and their reports")
    p.add_argument("--bases", default=None, help="bootstrapped llm/ + encoder/ (default: --out)")
    p.add_argument(
        "--bootstrap-minutes", type=float, default=8.0, help="CPU minutes per base if missing"
    )
    p.add_argument("--steps", type=int, default=2250, help="multitask steps of each arm")
    p.add_argument("--align-steps", type=int, default=100)
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--eval-lines", type=int, default=None, help="test lines per task (all)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate the arms already trained in --out again instead of training them",
    )
    p.add_argument(
        "--results",
        default=str(HERE / "results" / "joint_vs_direct.json"),
        help="JSON with the table and the settings",
    )
    return p.parse_args(argv)


def test_subset(data: Path, out: Path, per_task: int | None) -> Path:
    """The test split's lines of :data:`TASKS` (the first ``per_task`` of each), each with its
    recording's transcript in ``meta.transcript`` (the joint arm's WER reference) so that the
    ``asr`` lines need not be decoded too."""
    rows = [json.loads(line) for line in (data / "test.jsonl").read_text().splitlines()]
    spoken = {row["audio"]: row["target"] for row in rows if row["task"] == "asr"}
    kept: dict[str, list[dict[str, Any]]] = {task: [] for task in TASKS}
    for row in rows:
        if row["task"] in kept and (per_task is None or len(kept[row["task"]]) < per_task):
            row["meta"] = {**row.get("meta", {}), "transcript": spoken[row["audio"]]}
            row["audio"] = str((data / row["audio"]).resolve())
            kept[row["task"]].append(row)
    path = out / "test_subset.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for task in TASKS for row in kept[task]))
    return path


def run_arm(name: str, args: argparse.Namespace, bases: Path, manifest: Path) -> dict[str, Any]:
    """Train one arm and evaluate it on ``manifest``; returns per-task scores and timings."""
    from speechllm.config import compose
    from speechllm.evaluation.decoding import DecodingConfig
    from speechllm.evaluation.run import evaluate
    from speechllm.models import SpeechLLM
    from speechllm.models.pretrained import export_checkpoint
    from speechllm.training.train import train

    out = Path(args.out) / name
    overrides = [
        "experiment=synthetic_tiny",
        f"paths.data_dir={args.data}",
        f"paths.bootstrap_dir={bases}",
        "~mixture",
        f"+mixture={MIXTURE}",
        f"curriculum.stages.align.steps={args.align_steps}",
        f"curriculum.stages.lora_warmup.steps={args.warmup_steps}",
        f"trainer.max_steps={args.align_steps + args.warmup_steps + args.steps}",
        f"trainer.val_check_interval={args.align_steps + args.warmup_steps + args.steps}",
        f"callbacks.checkpoint.every_n_train_steps={args.steps}",
        f"data.joint_tasks=[{','.join(TASKS)}]" if name == "joint" else "data.joint_tasks=[]",
    ]
    start = time.perf_counter()
    reused = args.reuse and (out / "model" / "config.json").is_file()
    if not reused:
        train(compose(overrides, output_dir=out / "train"))
        export_checkpoint(out / "train" / "checkpoints" / "last.ckpt", out / "model")
    trained = time.perf_counter() - start
    model = SpeechLLM.from_pretrained(out / "model")
    decoding = DecodingConfig(max_new_tokens=64, joint=list(TASKS) if name == "joint" else False)
    metrics = evaluate(model, [str(manifest)], out / "eval", decoding, max_batch_seconds=240.0)
    return {
        "tasks": metrics["tasks"],
        "train_s": None if reused else round(trained, 1),  # None: trained by an earlier run
        "eval_s": round(time.perf_counter() - start - trained, 1),
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per task, the direct and joint scores and the joint transcripts' WER."""
    rows = [
        "| task | metric | direct | joint | joint: transcript WER | n |",
        "|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        direct, joint = results["direct"]["tasks"][task], results["joint"]["tasks"][task]
        metric = get_task(task).metric
        wer = joint.get("transcript_wer")
        rows.append(
            f"| {task} | {metric} | {direct[metric]:.1f} | {joint[metric]:.1f} | "
            f"{'-' if wer is None else f'{wer:.1f}'} | {direct['n']} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    if not (data / "test.jsonl").is_file():
        raise SystemExit(f"{data}/test.jsonl missing: speechllm-synth out={data} preset=small")
    bases = Path(args.bases or out)
    bases.mkdir(parents=True, exist_ok=True)
    minutes = str(args.bootstrap_minutes)
    preset = {
        "llm": ["--steps", "5000", "--max-minutes", minutes],
        "encoder": ["--steps", "3400", "--max-minutes", minutes],
    }
    start = time.perf_counter()
    bootstrap(data, bases, {**PRESETS["full"], **preset}, "synthetic_tiny", again=False)
    bootstrap_s = time.perf_counter() - start

    import torch

    torch.set_num_threads(args.threads)
    manifest = test_subset(data, out, args.eval_lines)
    results = {arm: run_arm(arm, args, bases, manifest) for arm in ("direct", "joint")}
    text = table(results)
    print(text)
    settings = {k: v for k, v in vars(args).items() if k != "results"}
    document = {
        **provenance("recipes/synthetic_tiny/joint_vs_direct.py", argv),
        "settings": {**settings, "bootstrap_s": round(bootstrap_s, 1), "mixture": MIXTURE},
        "results": results,
        "table": text,
    }
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(document, indent=2) + "\n")
    return document


if __name__ == "__main__":
    main()
