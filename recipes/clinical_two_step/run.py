"""Two-step PEFT on synthetic clinical speech: Gema et al. (2023) Table 3, at tiny size.

    python recipes/clinical_two_step/run.py [--smoke] [--out runs/clinical_two_step]
        [--bases DIR | --real] [--alignment STEP_ONE_EXPORT_OR_CKPT]

``--real`` runs it on the demo's real bases (Whisper tiny.en and SmolLM2-135M-Instruct, from
``speechllm-fetch``, with the demo's downsampler and prompt), and every arm starts from the
committed demo model's aligned downsampler and layer weights (``recipes/synthetic_real/model``)
unless ``--alignment`` names another.

1. data: ``speechllm-synth preset=clinical`` (dictations + a domain text corpus);
2. bases: the frozen encoder and LLM, saved once so that both steps share them exactly
   (tiny random ones by default, or ``--bases DIR`` holding ``encoder/`` and ``llm/``);
3. step one: a ``domain`` LoRA trained as a causal LM on the text corpus (no audio);
4. step two, three arms with the same step budget: the ``task`` adapter alone, the domain
   adapter frozen under it, and both trainable; with ``--alignment`` (a speech step one's
   export or checkpoint on the same bases, ``experiment=domain_asr``) every arm starts from its
   downsampler and layer weights (``two_step.alignment``) instead of fresh ones;
5. ``speechllm.evaluation.run.evaluate`` on the test set, as ``speechllm-eval`` scores it
   (``symptoms`` through its head with a threshold chosen on dev, ``department`` by label
   scores): AUROC per task and their mean in ``results.md`` and ``results.json``, each arm's
   full report under ``<arm>/eval``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from speechllm._warnings import quiet_known_warnings
from speechllm.config import compose
from speechllm.evaluation.decoding import DecodingConfig
from speechllm.evaluation.run import evaluate
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.synth import SynthConfig, generate
from speechllm.training.train import build, train_text

ARMS = {
    "none": "downstream LoRA only",
    "frozen": "domain LoRA (frozen) + downstream LoRA",
    "trainable": "domain LoRA (trainable) + downstream LoRA",
}
TASKS = ("symptoms", "department")
SIZES = {  # data, text steps, downstream steps
    "full": (dict(n_train=1500, n_dev=100, n_test=200, text_lines=6000), 300, 300),
    "real": (dict(n_train=600, n_dev=60, n_test=120, text_lines=6000), 200, 100),  # --real
    "smoke": (dict(n_train=8, n_dev=2, n_test=8, text_lines=32), 2, 2),
}


ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "recipes" / "synthetic_real" / "model"
# --real: the bases' overrides for step one (text) and step two (speech: the demo's encoder,
# downsampler and chat prompt)
REAL_TEXT = ["llm=smollm2"]
REAL_SPEECH = [
    "encoder=whisper_tiny_en",
    "+encoder.cache_hidden_states=true",
    "llm=smollm2",
    "downsampler.summary_tokens=2",  # the demo model's downsampler, so its weights load
    "chat_template=true",
    "prompt_template='<audio>{audio}</audio> {instruction} {summary}'",
]
RECORD = "recipes/clinical_two_step/results/speech_real.json"


def make_bases(out: Path, seed: int) -> Path:
    """Tiny random encoder and LLM, written once so every run loads the same weights."""
    if not (out / "llm" / "config.json").exists():
        torch.manual_seed(seed)
        tiny_encoder("wavlm").save_pretrained(out / "encoder")
        tiny_llm("llama", initializer_range=0.2).save_base(out / "llm")
    return out


def llm_overrides(bases: Path) -> list[str]:
    return ["llm=pretrained", "lora=llama", f"llm.name_or_path={bases / 'llm'}"]


def encoder_overrides(bases: Path) -> list[str]:
    return [
        "encoder=pretrained",
        f"encoder.name_or_path={bases / 'encoder'}",
        "+encoder.cache_hidden_states=true",  # frozen: each utterance is encoded once
    ]


def step_one(data: Path, llm: list[str], out: Path, steps: int) -> Path:
    """Train the domain adapter on text (unless a finished one is there); returns its folder."""
    adapter = out / "adapters" / "domain"
    if (adapter / "adapter_config.json").is_file():
        return adapter
    overrides = [
        *llm,
        f"corpus={data / 'domain_text.txt'}",
        f"trainer.max_steps={steps}",
        f"paths.output_dir={out}",
        "logger=csv",
        "+trainer.enable_progress_bar=false",
        f"module.scheduler.warmup_steps={max(1, steps // 10)}",
    ]
    metrics = train_text(compose(overrides, config_name="train_text"))
    print(f"step one: train/loss {metrics.get('train/loss', float('nan')):.3f}", flush=True)
    return adapter


def step_two(
    arm: str,
    data: Path,
    bases: list[str],
    adapter: Path,
    out: Path,
    steps: int,
    seed: int,
    alignment: Path | None = None,
) -> dict[str, float]:
    """Train one arm on the downstream tasks (``bases``: the encoder and LLM overrides) and
    score it on the test set."""
    cfg = compose(
        [
            *([f"two_step.alignment={alignment}"] if alignment else []),
            "experiment=clinical_two_step",
            *bases,
            f"two_step.domain={arm}",
            f"two_step.domain_adapter_path={adapter}",
            f"paths.data_dir={data}",
            f"data.test_manifests=[{data / 'test.jsonl'}]",
            f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={steps}",
            f"callbacks.checkpoint.every_n_train_steps={steps}",
            f"module.scheduler.warmup_steps={max(1, steps // 10)}",
            "callbacks.progress.refresh_rate=0",
            f"seed={seed}",
        ],
        output_dir=out,
    )
    module, datamodule, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    metrics = evaluate(
        module.model,
        [str(data / "test.jsonl")],
        out / "eval",
        DecodingConfig(max_new_tokens=16),
        dev_manifests=[str(data / "dev.jsonl")],
    )
    result = {task: metrics["tasks"][task]["auroc"] for task in TASKS}
    return result | {"mean": float(np.mean(list(result.values())))}


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it, for a record that reads the same on
    every checkout."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def results_table(results: dict[str, dict[str, float]], steps: int, text_steps: int) -> str:
    """Test AUROC per arm and task, as ``results.md`` and the README show it."""
    rows = [
        f"| {ARMS[arm]} | {r['symptoms']:.1f} | {r['department']:.1f} | {r['mean']:.1f} |"
        for arm, r in results.items()
    ]
    return "\n".join(
        [
            f"Test AUROC (%), {steps} downstream steps per arm, {text_steps} text steps:",
            "",
            "| model | symptoms | department | mean |",
            "|---|---|---|---|",
            *rows,
        ]
    )


def readme_table(doc: dict) -> str:
    """The README's table of the ``--real`` run, generated from its record (a test keeps them
    equal)."""
    minutes = doc["minutes"]
    return results_table(doc["arms"], doc["steps"], doc["text_steps"]) + (
        f"\n\n1 seed; step one {minutes['step_one']} min, each arm (training and scoring) "
        f"{min(minutes[arm] for arm in ARMS)}-{max(minutes[arm] for arm in ARMS)} min; recorded "
        f"{doc['date']} on {doc['machine']} at commit {doc['commit'][:10]} "
        f"(`{doc['command']}`; `{RECORD}`)."
    )


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/clinical_two_step", help="output folder")
    parser.add_argument("--smoke", action="store_true", help="seconds-long CI run")
    parser.add_argument("--bases", help="folder with encoder/ and llm/ (default: tiny random)")
    parser.add_argument("--real", action="store_true", help="Whisper tiny.en + SmolLM2 (fetched)")
    parser.add_argument("--record", action="store_true", help=f"write {RECORD} (README)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="downstream steps per arm (default: by size)")
    parser.add_argument(
        "--alignment", help="a speech step one's export or last.ckpt on the same bases: step two "
        "starts from its downsampler and layer weights",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.record and (args.smoke or not args.real):
        parser.error(f"--record writes {RECORD}: the full --real run's figures")
    out = Path(args.out).resolve()
    quiet_known_warnings()
    synth, text_steps, steps = SIZES["smoke" if args.smoke else "real" if args.real else "full"]
    steps = args.steps or steps
    data = out / "data"
    generate(SynthConfig(out=str(data), domain="clinical", seed=args.seed, workers=2, **synth))
    if args.real:
        from speechllm.models.fetch import fetch

        for name in ("whisper-tiny.en", "smollm2"):
            fetch(name)
        text_llm, bases = REAL_TEXT, REAL_SPEECH
        alignment = Path(args.alignment or DEMO_MODEL).resolve()
    else:
        folder = Path(args.bases).resolve() if args.bases else make_bases(out / "bases", args.seed)
        text_llm, bases = llm_overrides(folder), encoder_overrides(folder) + llm_overrides(folder)
        alignment = Path(args.alignment).resolve() if args.alignment else None
    started = time.monotonic()
    adapter = step_one(data, text_llm, out / "domain_text", text_steps)
    minutes = {"step_one": round((time.monotonic() - started) / 60, 1)}
    results = {}
    for arm in ARMS:
        started = time.monotonic()
        results[arm] = step_two(arm, data, bases, adapter, out / arm, steps, args.seed, alignment)
        minutes[arm] = round((time.monotonic() - started) / 60, 1)
    table = results_table(results, steps, text_steps)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table + "\n")
    print(table)
    if args.record:
        from speechllm.provenance import provenance

        doc = {**provenance("recipes/clinical_two_step/run.py", argv), "steps": steps,
               "text_steps": text_steps, "alignment": shown(alignment),
               "minutes": minutes, "arms": results}  # fmt: skip
        record = ROOT / RECORD
        record.parent.mkdir(exist_ok=True)
        record.write_text(json.dumps(doc, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
