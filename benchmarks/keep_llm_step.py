"""What each keep-the-LLM option costs per training step, on the real-bases demo model.

One model built from ``experiment=synthetic_real`` (frozen Whisper tiny.en and SmolLM2-135M,
LoRA and the downsampler training, the LoRA warm-up's objective ``{lm: 1, ctc: 0.3}``), one
batch of 8 training ASR lines and one of 8 text-only items (``text_instruct.jsonl``); each
setting times forward + backward + an AdamW step, median of ``--steps`` after two warm-up
steps, in one process so every setting sees the same machine::

    baseline       the speech batch
    kd             + the kd objective (a no-grad teacher pass over the transcript prompt)
    gated          + audio-gated LoRA (a hook scales each LoRA input by its row's gate)
    text batch     a batch of text items instead of speech (no encoder, shorter rows)

    python benchmarks/keep_llm_step.py            # -> benchmarks/results/keep_llm_step.json
    python benchmarks/keep_llm_step.py --tiny     # the same on tiny random bases (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "keep_llm_step.json"
TEXT = REPO / "recipes" / "synthetic_real" / "text_instruct.jsonl"
SETTINGS = ("baseline", "kd", "gated", "text batch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=6, help="timed steps per setting")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--data", type=Path, default=REPO / "data" / "synthetic_small")
    p.add_argument("--tiny", action="store_true", help="tiny random bases (wiring check)")
    p.add_argument("--out", type=Path, default=OUT)
    return p.parse_args(argv)


def batches(model: Any, manifest: Path) -> dict[str, dict[str, Any]]:
    """8 ASR lines of ``manifest`` and 8 text items, as the training collator makes them."""
    from speechllm.data.dataset import SpeechDataset, collate, text_item
    from speechllm.data.features import Featurizer
    from speechllm.data.manifest import read_manifest
    from speechllm.data.text_items import read_text_items
    from speechllm.training.module import transcripts

    featurizer = Featurizer.for_encoder(model.encoder)
    asr = [e for e in read_manifest(manifest) if e.task == "asr"][:8]
    speech = collate([SpeechDataset(asr, featurizer)[i] for i in range(len(asr))])
    texts = read_text_items([str(TEXT)])[:8]
    text = collate([text_item(e, featurizer) for e in texts])
    for batch in (speech, text):
        del batch["bad_items"]
        batch["transcripts"] = transcripts(batch)  # as the training step fills them
    return {"speech": speech, "text": text}


def step_seconds(
    module: Any, batch: dict[str, Any], objective: dict[str, float], steps: int
) -> float:
    import torch

    model = module.model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        loss = model(**batch, objective=objective).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch
    from hydra.utils import instantiate

    from speechllm.config import compose

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            from speechllm.testing import write_tiny_manifest

            manifest = write_tiny_manifest(Path(tmp), 16)
            cfg = compose(["experiment=tiny_smoke"], output_dir=tmp)
        else:
            manifest = args.data / "train.jsonl"
            cfg = compose(["experiment=synthetic_real"], output_dir=tmp)
        module = instantiate(cfg.module)
        module.model.set_trainable(["downsampler", "layer_weights", "lora"])
        module.model.train()
        data = batches(module.model, manifest)
    base = {"lm": 1.0, "ctc": 0.3} if module.model.ctc is not None else {"lm": 1.0}
    rows = []
    for setting in SETTINGS:
        module.model.audio_gated = setting == "gated"
        objective = {**base, "kd": 1.0} if setting == "kd" else base
        batch = data["text" if setting == "text batch" else "speech"]
        seconds = step_seconds(module, batch, objective, args.steps)
        rows.append({"setting": setting, "step_s": round(seconds, 3)})
        print(f"{setting:12s} {seconds:.3f} s", flush=True)
    module.model.audio_gated = False
    return rows


def readme_table(result: dict[str, Any]) -> str:
    """The recipe README's step-cost table, from ``results/keep_llm_step.json``."""
    baseline = result["rows"][0]["step_s"]
    rows = ["| setting | median step (s) | vs baseline |", "|---|---|---|"]
    rows += [
        f"| {r['setting']} | {r['step_s']:.2f} | {r['step_s'] / baseline:.2f}x |"
        for r in result["rows"]
    ]
    return "\n".join(rows) + (
        f"\n\n{result['threads']} threads, load average {result['load_average']:.1f}; measured "
        f"{result['date']} on {result['machine']} at commit {result['commit'][:10]} "
        f"(`{result['command']}`; `benchmarks/results/keep_llm_step.json`)."
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    rows = measure(args)
    if args.tiny:
        return rows
    from speechllm.provenance import provenance

    result = {
        **provenance("benchmarks/keep_llm_step.py", argv),
        "load_average": os.getloadavg()[0],
        "threads": args.threads,
        "rows": rows,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(readme_table(result))
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
