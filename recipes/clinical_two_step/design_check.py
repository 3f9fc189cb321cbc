"""Check the synthetic clinical-knowledge domain before the experiment: does a domain adapter
learn the associations its corpus states, beyond the corpus's style?

    python recipes/clinical_two_step/design_check.py            # SmolLM2-135M-Instruct
    python recipes/clinical_two_step/design_check.py --tiny     # a tiny random Llama: seconds

1. data: ``speechllm-data synth clinical-knowledge`` (``--tiny``: its tiny size);
2. the base model's perplexity on held-out association sentences (wordings the corpus never
   uses) and on the same sentences with a wrong partner (the control);
3. step one: the ``domain`` adapter trained on ``domain_text.txt`` (``speechllm-train-text``),
   its held-out perplexity logged as it trains (the curve: ``exp(val/loss)`` over the first
   held-out batches, every ``eval_every`` steps, from metrics.csv);
4. the adapter's perplexity on both sets.

``design_check.json`` holds the figures, the curve and two checks: ``learns`` (the adapter's
held-out perplexity is below the base model's; the base is frozen, so its own stays where it
was) and ``knowledge`` (it fell further on the true statements than on the wrong ones: the
adapter learned which partner goes with which drug, finding and procedure, not only how the
sentences read). ``passed`` is both. At ``--tiny`` size nothing is expected to pass: that mode
checks the mechanics in CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate

from speechllm._warnings import quiet_known_warnings
from speechllm.config import compose
from speechllm.data.text import read_lines
from speechllm.models.tiny import tiny_llm
from speechllm.synth.clinical_knowledge import write_clinical_knowledge
from speechllm.training.text_lm import perplexity
from speechllm.training.train import train_text

SIZES = {  # data size, domain steps, batch, eval every, held-out sentences per eval
    "real": dict(data="full", steps=400, batch=16, eval_every=50, eval_batches=8),
    "tiny": dict(data="tiny", steps=4, batch=8, eval_every=2, eval_batches=2),
}


def llm_overrides(out: Path, tiny: bool) -> list[str]:
    """The base LLM for both steps: SmolLM2 (``speechllm-fetch smollm2``), or a tiny random
    Llama saved once so every step and arm loads the same weights."""
    if not tiny:
        return ["llm=smollm2"]
    base = out / "tiny_base"
    if not (base / "config.json").is_file():
        tiny_llm("llama", initializer_range=0.2).save_base(base)
    return ["llm=pretrained", "lora=tiny_llama", f"llm.name_or_path={base}"]


def step_one(data: Path, llm: list[str], out: Path, size: dict[str, Any]) -> Path:
    """Train the domain adapter (unless a finished one is there); returns its folder."""
    adapter = out / "adapters" / "domain"
    if (adapter / "adapter_config.json").is_file():
        return adapter
    cfg = compose(
        [
            *llm,
            f"corpus={data / 'domain_text.txt'}",
            f"val_corpus={data / 'heldout_associations.txt'}",
            f"trainer.max_steps={size['steps']}",
            f"trainer.val_check_interval={size['eval_every']}",
            "trainer.check_val_every_n_epoch=null",
            f"trainer.limit_val_batches={size['eval_batches']}",
            f"data.batch_size={size['batch']}",
            f"module.scheduler.warmup_steps={max(1, size['steps'] // 10)}",
            "+trainer.enable_progress_bar=false",
        ],
        output_dir=out,
        config_name="train_text",
    )
    train_text(cfg)
    return adapter


def val_losses(run: Path) -> list[tuple[int, float]]:
    """``(step, val/loss)`` at each validation of a run, from its metrics.csv."""
    with open(run / "logs" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/loss")]
    return [(int(r["step"]), float(r["val/loss"])) for r in rows]


def curve(run: Path) -> list[dict[str, float]]:
    """The held-out perplexity at each evaluation of step one."""
    return [{"step": step, "perplexity": math.exp(loss)} for step, loss in val_losses(run)]


def perplexities(data: Path, llm: list[str], adapter: Path) -> dict[str, dict[str, float]]:
    """Base and domain-adapter perplexity on the held-out true and wrong statements."""
    model = instantiate(compose(llm, config_name="train_text").llm, _convert_="all")
    sets = {
        "true": read_lines(data / "heldout_associations.txt"),
        "wrong": read_lines(data / "heldout_shuffled.txt"),
    }
    with model.adapters_off():
        base = {name: perplexity(model, texts) for name, texts in sets.items()}
    model.load_adapter(adapter, "step_one")
    model.set_adapters(active=["step_one"], trainable=[])
    domain = {name: perplexity(model, texts) for name, texts in sets.items()}
    return {"base": base, "domain": domain}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/clinical_design_check", help="output folder")
    parser.add_argument("--tiny", action="store_true", help="tiny random Llama: seconds (CI)")
    parser.add_argument("--seed", type=int, default=0, help="the synthetic domain's seed")
    parser.add_argument("--steps", type=int, help="domain steps (default: by size)")
    args = parser.parse_args(argv)
    quiet_known_warnings()
    size = dict(SIZES["tiny" if args.tiny else "real"])
    size["steps"] = args.steps or size["steps"]
    out = Path(args.out).resolve()
    started = time.time()
    data = out / "data"
    write_clinical_knowledge(data, args.seed, size["data"])
    llm = llm_overrides(out, args.tiny)
    adapter = step_one(data, llm, out / "domain", size)
    ppl = perplexities(data, llm, adapter)
    drop = {k: math.log(ppl["base"][k] / ppl["domain"][k]) for k in ("true", "wrong")}
    checks = {
        "learns": ppl["domain"]["true"] < ppl["base"]["true"],
        "knowledge": drop["true"] > drop["wrong"],
    }
    result = {
        "llm": llm,
        "size": size,
        "seed": args.seed,
        "perplexity": ppl,
        "log_drop": drop,
        "curve": curve(out / "domain"),
        "checks": checks,
        "passed": all(checks.values()),
        "minutes": (time.time() - started) / 60,
    }
    (out / "design_check.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("perplexity", "checks", "passed")}, indent=2))
    return result


if __name__ == "__main__":
    main()
