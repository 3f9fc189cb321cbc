"""Do the frozen encoder's pooled features carry the clip-level labels? A linear probe.

The demo's speech LLM answers gender, speaker count, accent and emotion near chance. This asks
whether the information is missing or the model fails to learn to read it: a logistic
regression (scikit-learn) on each recording's pooled Whisper tiny.en features, trained on a few
hundred training lines per task and scored on the test split's lines (UAR, as the demo scores
them), beside the speech LLM's own UAR on the same split::

    layer mix, mean    the mean over frames of the model's learned layer mix: what its
                       utterance embeddings read (ConvDownsampler.summary_tokens)
    every layer, mean + std   each hidden state's mean and standard deviation over frames

    python recipes/synthetic_real/label_probe.py                 # ~3 min on one core
    python recipes/synthetic_real/label_probe.py --record        # -> results/label_probe.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from speechllm.data.manifest import ManifestEntry, read_manifest

HERE = Path(__file__).resolve().parent
RECIPE = "recipes/synthetic_real"
RESULTS = f"{RECIPE}/results"
FEATURES = ("layer mix, mean", "every layer, mean + std")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default=f"{RECIPE}/model", help="a speech LLM export")
    p.add_argument("--data", default="data/synthetic_small", help="the benchmark folder")
    p.add_argument("--tasks", nargs="+", default=["gr", "sc", "ac", "er"])
    p.add_argument("--train-lines", type=int, default=400, help="training lines per task")
    p.add_argument(
        "--speech-llm",
        default=f"{RESULTS}/long_run.json",
        help="the results JSON of the model's own evaluation (its test UAR per task)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--record", action="store_true", help=f"write {RESULTS}/label_probe.json")
    return p.parse_args(argv)


def lines(manifest: Path, tasks: list[str], limit: int | None) -> list[ManifestEntry]:
    """The first ``limit`` lines of each task (all with ``None``), validated by the data layer
    (``audio`` made absolute)."""
    seen: Counter[str] = Counter()
    out = []
    for entry in read_manifest(manifest):
        if entry.task in tasks and (limit is None or seen[entry.task] < limit):
            seen[entry.task] += 1
            out.append(entry)
    return out


def pooled(model, audio: Path) -> dict[str, Any]:
    """One recording's pooled features, each a 1-D numpy array."""
    import torch

    from speechllm.inference import featurize

    features, lengths = featurize(model, audio)
    encoder = model.encoder
    with torch.no_grad():
        hidden = torch.stack(encoder.hidden_states(features, lengths))[:, 0]  # (L, T, D)
        hidden = hidden[:, : int(encoder.output_lengths(lengths)[0])]
        mix = encoder.layer_weights(hidden[:, None])[0]  # (T, D)
    return {
        FEATURES[0]: mix.mean(0).numpy(),
        FEATURES[1]: torch.cat([hidden.mean(1).flatten(), hidden.std(1).flatten()]).numpy(),
    }


def uar(train: tuple[Any, list[str]], test: tuple[Any, list[str]]) -> float:
    """Balanced accuracy (UAR, %) of a standardised logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(*train)
    return round(100.0 * float(balanced_accuracy_score(test[1], clf.predict(test[0]))), 1)


def table(result: dict[str, Any]) -> str:
    """The README's table, generated from ``results/label_probe.json``."""
    rows = [
        f"| task | train / test lines | {' | '.join(FEATURES)} | the speech LLM |",
        "|---|---|" + "---|" * (len(FEATURES) + 1),
    ]
    for task, r in result["tasks"].items():
        probes = " | ".join(f"{r['probe'][name]:.1f}" for name in FEATURES)
        rows.append(f"| {task} | {r['train']} / {r['test']} | {probes} | {r['speech_llm']:.1f} |")
    return "\n".join(rows) + (
        f"\n\nUAR on the test split; measured {result['date']} on {result['machine']} at commit "
        f"{result['commit'][:10]} (`{result['command']}`; `{RESULTS}/label_probe.json`; the "
        f"speech LLM's UAR is its own evaluation's, on test lines with seen and held-out "
        f"instructions: `{result['speech_llm_results']}`)."
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import numpy as np
    import torch
    from tqdm import tqdm

    from speechllm.models import SpeechLLM

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    model = SpeechLLM.from_pretrained(args.model).eval()
    train = lines(data / "train.jsonl", args.tasks, args.train_lines)
    test = lines(data / "test.jsonl", args.tasks, None)
    cache: dict[str, dict[str, Any]] = {}
    for row in tqdm(train + test, desc="encoding", unit="line"):
        if row.audio not in cache:
            cache[row.audio] = pooled(model, Path(row.audio))
    speech_llm = json.loads(Path(args.speech_llm).read_text())["tasks"]
    tasks = {}
    for task in args.tasks:
        split = {name: [r for r in rows if r.task == task] for name, rows in
                 (("train", train), ("test", test))}  # fmt: skip
        tasks[task] = {
            "train": len(split["train"]),
            "test": len(split["test"]),
            "probe": {
                name: uar(
                    *(
                        (
                            np.stack([cache[r.audio][name] for r in rows]),
                            [r.target for r in rows],
                        )
                        for rows in (split["train"], split["test"])
                    )
                )  # fmt: skip
                for name in FEATURES
            },
            "speech_llm": speech_llm[task]["uar"],
        }
    from speechllm.provenance import provenance

    result = {
        **provenance("recipes/synthetic_real/label_probe.py", argv),
        "model": args.model,
        "speech_llm_results": args.speech_llm,
        "tasks": tasks,
    }
    print(table(result))
    if args.record:
        path = HERE / "results" / "label_probe.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"recorded {path}")
    return result


if __name__ == "__main__":
    main()
