"""Two-step PEFT on a real pretrained LLM, text only: Gema et al. (2023) Table 3 on the synthetic
clinical domain where domain knowledge transfers.

    python recipes/clinical_two_step/text_smollm2.py            # SmolLM2-135M-Instruct
    python recipes/clinical_two_step/text_smollm2.py --smoke    # a tiny random Llama: seconds

1. data: ``speechllm-data synth clinical-knowledge`` (notes with drugs, findings and procedures,
   never their labels; a corpus stating which goes with which; a test set weighted to the
   associations downstream training never shows);
2. step one and the design check (``design_check.py``): the ``domain`` adapter on the corpus,
   its held-out perplexity curve, base vs adapter perplexity on true and wrong statements;
3. step two: the three arms (``speechllm-train-text experiment=clinical_text_two_step``:
   ``two_step.domain`` none, frozen, trainable) for each seed, the same budget and data order;
4. ``speechllm-eval``'s scoring of a text classifier on the test set, thresholds chosen on dev:
   ``department`` (one of eight) and ``diagnoses`` (60 long-tailed codes, the large multi-label
   task, reported apart as the paper does);
5. ``results.json`` (every figure, per seed) and ``results.md`` (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from design_check import SIZES as CHECK_SIZES  # noqa: E402,I001
from design_check import curve, llm_overrides, perplexities, step_one, val_losses  # noqa: E402

from speechllm._warnings import quiet_known_warnings  # noqa: E402

from speechllm.config import compose  # noqa: E402
from speechllm.evaluation.text_classification import evaluate_text_classifier  # noqa: E402
from speechllm.synth.clinical_knowledge import write_clinical_knowledge  # noqa: E402
from speechllm.training.train import build_text  # noqa: E402
from speechllm.training.trainer import fit  # noqa: E402

RECORD_PATH = "recipes/clinical_two_step/results/smollm2.json"
RECORD = HERE.parents[1] / RECORD_PATH
ARMS = {
    "none": "downstream LoRA only",
    "frozen": "domain LoRA (frozen) + downstream LoRA",
    "trainable": "domain LoRA (trainable) + downstream LoRA",
}
SIZES = {  # downstream steps (batch 8 rows), seeds, dev loss every, dev batches each time
    "full": dict(steps=300, seeds=(0, 1, 2), eval_every=50, eval_batches=25),
    "smoke": dict(steps=2, seeds=(0,), eval_every=1, eval_batches=1),
}
COLUMNS = {  # results.md column -> (task, metric)
    "department": ("department", "auroc"),
    "diagnoses (macro)": ("diagnoses", "auroc"),
    "diagnoses (micro)": ("diagnoses", "micro_auroc"),
}


def step_two(
    arm: str, data: Path, llm: list[str], adapter: Path, out: Path, size: dict[str, Any], seed: int
) -> dict[str, Any]:
    """Train one arm with one seed, its dev loss logged every ``eval_every`` steps (the curve
    that shows whether the budget let it converge); score it on the test set (thresholds
    from dev)."""
    steps = size["steps"]
    saved = out / "result.json"
    if saved.is_file():  # finished before (the experiment resumes arm by arm)
        return json.loads(saved.read_text())
    cfg = compose(
        [
            *llm,
            "experiment=clinical_text_two_step",
            f"two_step.domain={arm}",
            f"two_step.domain_adapter_path={adapter}",
            f"paths.data_dir={data}",
            f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={size['eval_every']}",
            "trainer.check_val_every_n_epoch=null",
            f"trainer.limit_val_batches={size['eval_batches']}",
            f"module.scheduler.warmup_steps={max(1, steps // 10)}",
            f"seed={seed}",
            "+trainer.enable_progress_bar=false",
        ],
        output_dir=out,
        config_name="train_text",
    )
    module, datamodule, trainer = build_text(cfg)
    fit(module, datamodule, trainer)
    scores = evaluate_text_classifier(
        module.model.eval(),
        [str(data / "test.jsonl")],
        out / "eval",
        dev_manifests=[str(data / "dev.jsonl")],
    )
    curve = [{"step": step, "dev_loss": loss} for step, loss in val_losses(out)]
    result = {**scores, "dev_curve": curve}
    saved.write_text(json.dumps(result, indent=2))
    return result


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Test AUROC (%), mean ± sample standard deviation over seeds."""

    def cell(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1f} ± {spread:.1f}"

    def mean(run: dict[str, Any]) -> float:  # the tasks' macro AUROC, as the paper's mean
        return statistics.mean(task["auroc"] for task in run["tasks"].values())

    names = [*COLUMNS, "mean (macro)"]
    lines = [f"| model | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]
    for arm, runs in results.items():
        cells = [cell([run["tasks"][t][m] for run in runs]) for t, m in COLUMNS.values()]
        cells.append(cell([mean(run) for run in runs]))
        lines.append(f"| {ARMS[arm]} | {' | '.join(cells)} |")
    return "\n".join(lines)


def readme_table(doc: dict[str, Any]) -> str:
    """The recipe README's block, from the committed results JSON (a test keeps them equal)."""
    settings, design = doc["settings"], doc["design_check"]
    ppl = design["perplexity"]
    curve = ", ".join(f"{p['perplexity']:.1f}" for p in design["curve"])
    dev = {
        arm: statistics.mean(run["dev_curve"][-1]["dev_loss"] for run in runs)
        for arm, runs in doc["results"].items()
    }
    return (
        f"{table(doc['results'])}\n\n"
        f"Test AUROC (%), mean ± std over seeds {settings['seeds']}: {settings['steps']} "
        f"downstream steps of {settings['batch']} rows per arm and seed, after "
        f"{settings['domain']['steps']} domain steps of {settings['domain']['batch']} corpus "
        f"sentences. Held-out association sentences, perplexity base -> domain adapter: true "
        f"{ppl['base']['true']:.1f} -> {ppl['domain']['true']:.1f}, wrong partner "
        f"{ppl['base']['wrong']:.1f} -> {ppl['domain']['wrong']:.1f}; during step one: {curve}. "
        "Last dev loss (mean over seeds): "
        + ", ".join(f"{arm} {loss:.3f}" for arm, loss in dev.items())
        + f". {doc['minutes']:.0f} min in all; measured {doc['date']} on {doc['machine']} at "
        f"commit {doc['commit'][:10]} (`{doc['command']}`; `{RECORD_PATH}`)."
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/clinical_smollm2", help="output folder")
    parser.add_argument("--smoke", action="store_true", help="tiny random Llama: seconds (CI)")
    parser.add_argument("--steps", type=int, help="downstream steps per arm (default: by size)")
    parser.add_argument("--domain-steps", type=int, help="step one's steps (default: by size)")
    parser.add_argument("--seeds", type=int, nargs="+", help="downstream seeds (default: 0 1 2)")
    parser.add_argument(
        "--arms", nargs="+", choices=list(ARMS), default=list(ARMS),
        help="arms to train (another process may train the others: each arm-seed resumes)",
    )  # fmt: skip
    parser.add_argument(
        "--domain-run",
        help="step one's run folder, reused when it holds adapters/domain (default: OUT/domain; "
        "design_check.py's is runs/clinical_design_check/domain)",
    )
    parser.add_argument("--record", action="store_true", help=f"write {RECORD.name} (README)")
    args = parser.parse_args(argv)
    quiet_known_warnings()
    size = dict(SIZES["smoke" if args.smoke else "full"])
    check = dict(CHECK_SIZES["tiny" if args.smoke else "real"])
    check["steps"] = args.domain_steps or check["steps"]
    size["steps"] = args.steps or size["steps"]
    steps, seeds = size["steps"], tuple(args.seeds or size["seeds"])
    out = Path(args.out).resolve()
    started = time.time()
    data = out / "data"
    write_clinical_knowledge(data, 0, check["data"])
    llm = llm_overrides(out, args.smoke)
    domain_run = Path(args.domain_run).resolve() if args.domain_run else out / "domain"
    adapter = step_one(data, llm, domain_run, check)
    design = {"perplexity": perplexities(data, llm, adapter), "curve": curve(domain_run)}
    domain_minutes = (time.time() - started) / 60
    results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in args.arms}
    for seed in seeds:
        for arm in args.arms:
            run = step_two(arm, data, llm, adapter, out / arm / f"seed{seed}", size, seed)
            results[arm].append(run)
            print(f"seed {seed} {arm}: {json.dumps(run['tasks'])[:300]}", flush=True)
    minutes = (time.time() - started) / 60
    settings = {"llm": llm, "domain": check, "steps": steps, "batch": 8, "seeds": list(seeds)}
    doc = {"settings": settings, "design_check": design, "results": results,
           "minutes": minutes, "domain_minutes": domain_minutes}  # fmt: skip
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    report = (
        f"Test AUROC (%), mean ± std over seeds {list(seeds)}; {steps} downstream steps per arm "
        f"(batch 8), {check['steps']} domain steps (batch {check['batch']}); {minutes:.1f} min "
        f"in all ({domain_minutes:.1f} for step one and the design check):\n\n{table(results)}\n"
    )
    (out / "results.md").write_text(report)
    print(report)
    if args.record:
        from speechllm.provenance import provenance

        doc = {**provenance("recipes/clinical_two_step/text_smollm2.py", argv), **doc}
        RECORD.parent.mkdir(exist_ok=True)
        RECORD.write_text(json.dumps(doc, indent=2) + "\n")
        print(readme_table(doc))
    return doc


if __name__ == "__main__":
    main()
