"""Where the ASR errors come from: the CTC aligner's own transcript, on sentences it saw and not.

A model built with ``ctc_compress`` reads the aligner's greedy path, so the path bounds what the
LLM hears. This scores that path alone (``speechllm.evaluation.ctc_path``), no LLM, for each
model on the first ``--lines`` ASR recordings of three splits of the small benchmark::

    train   sentences and voices the small benchmark trains on
    dev     new sentences, voices heard in training
    test    new sentences and new voices (the demo's test split)

A path far better on ``train`` than on ``dev`` has learnt its training sentences rather than
the words (the gap ``data/synthetic_medium``'s four times as many lines closes); ``dev`` against
``test`` is what the new voices cost::

    python recipes/synthetic_real/ctc_path.py MODEL [MODEL ...] --names A B   # ~1 min a model
    python recipes/synthetic_real/ctc_path.py ... --record      # -> results/ctc_path.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = "recipes/synthetic_real/results"
SPLITS = ("train", "dev", "test")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("models", nargs="+", help="export folders or training .ckpt files")
    p.add_argument("--names", nargs="+", help="a name per model for the table (default: paths)")
    p.add_argument("--data", default="data/synthetic_small", help="the benchmark folder")
    p.add_argument("--lines", type=int, default=246, help="ASR recordings per split")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--record", action="store_true", help=f"write {RESULTS}/ctc_path.json")
    args = p.parse_args(argv)
    if args.names and len(args.names) != len(args.models):
        p.error(f"--names gives {len(args.names)} names for {len(args.models)} models")
    return args


def table(result: dict[str, Any]) -> str:
    """The README's table, generated from ``results/ctc_path.json`` (a test keeps them equal)."""
    rows = [
        "| model | " + " | ".join(f"{s} ({result['lines'][s]} clips)" for s in SPLITS) + " |",
        "|---|" + "---|" * len(SPLITS),
    ]
    for name, wer in result["models"].items():
        rows.append(f"| {name} | " + " | ".join(f"{wer[s]:.1f}" for s in SPLITS) + " |")
    return "\n".join(rows) + (
        f"\n\nWER (%) of the aligner's greedy path alone; measured {result['date']} on "
        f"{result['machine']} at commit {result['commit'][:10]} (`{result['command']}`; "
        f"`{RESULTS}/ctc_path.json`)."
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch

    from speechllm._warnings import quiet_known_warnings
    from speechllm.data.features import Featurizer
    from speechllm.data.manifest import read_manifest
    from speechllm.evaluation.ctc_path import ctc_path_scores
    from speechllm.models.pretrained import load

    quiet_known_warnings()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    entries = {}
    for split in SPLITS:
        asr = [e for e in read_manifest(data / f"{split}.jsonl") if e.task == "asr"]
        entries[split] = list({e.audio: e for e in asr}.values())[: args.lines]
    models = {}
    for name, path in zip(args.names or args.models, args.models, strict=True):
        model = load(path)
        featurizer = Featurizer.for_encoder(model.encoder)
        scores = {s: ctc_path_scores(model, entries[s], featurizer) for s in SPLITS}
        if not all(scores.values()):
            raise SystemExit(f"{path}: the model has no CTC aligner (module.model.ctc)")
        models[name] = {s: scores[s]["wer"] for s in SPLITS}
        print(name, models[name], flush=True)
    from speechllm.provenance import provenance

    result = {
        **provenance("recipes/synthetic_real/ctc_path.py", argv),
        "data": args.data,
        "lines": {s: len(entries[s]) for s in SPLITS},
        "paths": dict(zip(args.names or args.models, args.models, strict=True)),
        "models": models,
    }
    print(table(result))
    if args.record:
        path = HERE / "results" / "ctc_path.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"recorded {path}")
    return result


if __name__ == "__main__":
    main()
