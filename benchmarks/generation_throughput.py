"""Generation throughput at batch 1 vs batch 16 on CPU, with a tiny WavLM + Llama.

Evaluation decodes thousands of items, and at small scale each generation step is mostly
per-call overhead, so batching should multiply throughput (goal: >= 5x at batch 16). Both
settings decode the same items for the same fixed number of tokens (eos suppressed, no
audio-length bound), so they do equal work.

Usage::

    python benchmarks/generation_throughput.py [--items 32] [--tokens 32] [--repeats 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from functools import partial
from pathlib import Path

import torch

from speechllm.evaluation.decoding import DecodingConfig, generate_free, select
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm

SAMPLING_RATE = 16000


def make_items(n: int, seed: int = 0) -> dict:
    """``n`` tones of 1-2 s in the data contract."""
    gen = torch.Generator().manual_seed(seed)
    lengths = ((torch.rand(n, generator=gen) + 1.0) * SAMPLING_RATE).long()
    audio = torch.zeros(n, int(lengths.max()))
    for b, length in enumerate(lengths.tolist()):
        t = torch.arange(length) / SAMPLING_RATE
        audio[b, :length] = torch.sin(2 * math.pi * (150.0 + 40.0 * b) * t)
    return {
        "audio": audio,
        "audio_lengths": lengths,
        "instructions": ["transcribe the audio"] * n,
        "targets": [""] * n,
        "tasks": ["asr"] * n,
        "ids": [f"bench-{b}" for b in range(n)],
    }


def throughput(
    model: SpeechLLM,
    items: dict,
    batch_size: int,
    config: DecodingConfig,
    suppress: list[int],
    repeats: int = 1,
) -> float:
    """Examples per second decoding ``items`` in batches of ``batch_size``, best of ``repeats``
    (the fastest run is the one least disturbed by other processes on a shared CPU)."""
    n = len(items["ids"])
    batches = [select(items, range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    for batch in batches:
        batch["audio"] = batch["audio"][:, : int(batch["audio_lengths"].max())]
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            generate_free(model, batch, config, suppress_tokens=suppress)
        seconds.append(time.perf_counter() - start)
    return n / min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=32, help="items decoded per setting")
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per item")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; best is kept")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/generation_throughput.json")
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm("llama")).eval()
    config = DecodingConfig(max_new_tokens=args.tokens, max_tokens_per_audio_second=None)
    suppress = [model.llm.eos_token_id]
    items = make_items(args.items)
    throughput(model, select(items, range(2)), 2, config, suppress)  # warm-up

    rates = {bs: throughput(model, items, bs, config, suppress, args.repeats) for bs in (1, 16)}
    speedup = rates[16] / rates[1]
    print(f"{'batch':>5} | {'examples/s':>10} | {'speed-up':>8}")
    for bs, rate in rates.items():
        print(f"{bs:>5} | {rate:>10.2f} | {rate / rates[1]:>7.1f}x")
    result = {
        "device": "cpu",
        "threads": args.threads,
        "model": "tiny wavlm + tiny llama",
        "items": args.items,
        "new_tokens": args.tokens,
        "repeats": args.repeats,
        "audio_seconds": "1-2",
        "examples_per_second": {str(bs): round(rate, 3) for bs, rate in rates.items()},
        "speedup_16_vs_1": round(speedup, 2),
        "goal_met": speedup >= 5.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
