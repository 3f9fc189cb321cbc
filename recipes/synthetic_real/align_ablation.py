"""Stage 1 by CTC against plain stage 1 at equal wall time, on the real-bases demo recipe.

Both arms then train the same LoRA warm-up (300 steps on ASR); each is scored on the test
split's ASR lines (unseen voices) right after it. The CTC arm is the demo's own run (its
checkpoint at the end of ``lora_warmup``); the plain arm aligns through the frozen LLM (LM loss,
no CTC anywhere) for as many steps as fit in the CTC stage's wall time::

    speechllm-train experiment=synthetic_real hydra.run.dir=runs/demo_real/train
    speechllm-train experiment=synthetic_real name=ablation_plain_align \\
      hydra.run.dir=runs/ablation_plain_align module.model.ctc=null \\
      'curriculum.stages.align.trainable=[downsampler,layer_weights]' \\
      +curriculum.stages.align.objective.lm=1.0 curriculum.stages.align.objective.ctc=0.0 \\
      curriculum.stages.align.steps=60 \\
      'curriculum.stages.lora_warmup.trainable=[downsampler,layer_weights,lora]' \\
      curriculum.stages.lora_warmup.objective.ctc=0.0 \\
      'curriculum.stages.multitask.trainable=[downsampler,layer_weights,lora]' \\
      curriculum.stages.multitask.objective.ctc=0.0 trainer.max_steps=360 \\
      trainer.val_check_interval=180 callbacks.checkpoint.every_n_train_steps=60
    python recipes/synthetic_real/align_ablation.py      # -> results/align_ablation.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "align_ablation.json"
ARMS = {
    "CTC over the LLM's vocabulary (1200 steps)": ("runs/demo_real/train", "step=1500.ckpt"),
    "plain: LM loss through the frozen LLM (60 steps)": (
        "runs/ablation_plain_align",
        "last.ckpt",
    ),
}


def score(run: Path, checkpoint: str, manifest: Path, out: Path) -> dict[str, Any]:
    """The checkpoint's ASR WER on ``manifest``'s ASR lines, and its stage-1 wall time."""
    from speechllm.evaluation.decoding import DecodingConfig
    from speechllm.evaluation.run import evaluate
    from speechllm.inference import load_model

    model = load_model(str(run / "checkpoints" / checkpoint), "cpu")
    metrics = evaluate(
        model, [str(manifest)], out, DecodingConfig(max_new_tokens=48), tasks=["asr"]
    )
    stages = {s["stage"]: s for s in json.loads((run / "stages.json").read_text())}
    answers = Counter(json.loads(line)["prediction"] for line in (out / "predictions.jsonl").open())
    ((top, count),) = answers.most_common(1)
    return {
        "run": str(run),
        "checkpoint": checkpoint,
        "align_steps": stages["align"]["steps"],
        "align_minutes": round(stages["align"]["seconds"] / 60, 1),
        "lora_warmup_steps": stages["lora_warmup"]["steps"],
        "wer": metrics["tasks"]["asr"]["wer"],
        "n": metrics["tasks"]["asr"]["n"],
        "distinct_answers": len(answers),
        "most_common_answer": {"text": top, "count": count},
    }


def table(result: dict[str, Any]) -> str:
    """The README's table, generated from the results JSON (a test keeps them equal)."""
    rows = [
        "| stage 1 | its wall time | then LoRA warm-up | test ASR WER (unseen voices) |",
        "|---|---|---|---|",
    ]
    for name, arm in result["arms"].items():
        rows.append(
            f"| {name} | {arm['align_minutes']} min | {arm['lora_warmup_steps']} steps | "
            f"{arm['wer']:.1f} (n={arm['n']}) |"
        )
    return "\n".join(rows) + (
        f"\n\nMeasured {result['date']} on {result['machine']} (shared with other jobs) at commit "
        f"{result['commit'][:10]}: `{result['command']}`, "
        "`recipes/synthetic_real/results/align_ablation.json`."
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/synthetic_small"))
    args = p.parse_args()
    arms = {
        name: score(Path(run), ckpt, args.data / "test.jsonl", Path("runs/align_ablation") / str(i))
        for i, (name, (run, ckpt)) in enumerate(ARMS.items())
    }
    from speechllm.provenance import provenance

    result = {**provenance("recipes/synthetic_real/align_ablation.py"), "arms": arms}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
