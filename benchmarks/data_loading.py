"""Data-loading benchmark: decode + resample + featurize throughput, and padding efficiency.

    python benchmarks/data_loading.py [--items 40] [--out benchmarks/results/data_loading.json]

Throughput is measured on one thread in one process (a DataLoader worker's view), in seconds of
audio per second (x real time). Padding efficiency is real / padded audio over batches of a
log-normal 1-20 s duration mix, with duration bucketing versus random batching.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from speechllm.data.dataset import SpeechDataset
from speechllm.data.features import Featurizer
from speechllm.data.manifest import read_manifest, write_manifest
from speechllm.data.sampler import Batching, padding_efficiency


def durations(n: int, seed: int) -> list[float]:
    """Utterance-like durations: log-normal (median ~4.5 s) clipped to 1-20 s."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(1.5, 0.6, n), 1.0, 20.0).round(2).tolist()


def throughput(items: int, seed: int) -> dict[str, float]:
    """x real time of SpeechDataset items for the Whisper and the waveform path."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        records = []
        for i, seconds in enumerate(durations(items, seed)):
            rate, ext = (16000, "flac") if i % 2 == 0 else (48000, "wav")  # half need resampling
            path = Path(tmp) / f"{i}.{ext}"
            sf.write(
                path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate
            )
            records.append(
                {
                    "id": str(i),
                    "audio": str(path),
                    "duration": seconds,
                    "task": "asr",
                    "target": "x",
                }
            )
        write_manifest(records, Path(tmp) / "m.jsonl")
        entries = read_manifest(Path(tmp) / "m.jsonl")
        total = sum(e.duration for e in entries)
        results = {}
        for name, extractor in (
            ("whisper", WhisperFeatureExtractor()),
            ("waveform", Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)),
        ):
            dataset = SpeechDataset(entries, Featurizer(extractor))
            dataset[0]  # warm caches (resampling kernel)
            start = time.perf_counter()
            for i in range(len(dataset)):
                dataset[i]
            results[name] = total / (time.perf_counter() - start)
        return results


def padding(n: int, seed: int, max_batch_seconds: float) -> dict[str, float]:
    """Padding efficiency of bucketed versus randomly packed batches."""
    d = durations(n, seed)
    batching = Batching(max_batch_seconds=max_batch_seconds, pool_size=1000)
    rng = np.random.default_rng(seed)
    bucketed = batching.bucket(range(n), d, rng)
    random_batches = batching.pack(rng.permutation(n).tolist(), d)
    return {
        "bucketed": padding_efficiency(bucketed, d),
        "random": padding_efficiency(random_batches, d),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=40, help="audio files for throughput")
    parser.add_argument("--durations", type=int, default=20000, help="items for padding")
    parser.add_argument("--max-batch-seconds", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/data_loading.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    speed = throughput(args.items, args.seed)
    pad = padding(args.durations, args.seed, args.max_batch_seconds)
    print(f"{'metric':<36}{'value':>10}{'goal':>10}")
    for name, value in speed.items():
        print(f"{'throughput ' + name + ' (x real time)':<36}{value:>10.0f}{'>= 300':>10}")
    for name, value in pad.items():
        goal = ">= 0.90" if name == "bucketed" else ""
        print(f"{'padding efficiency ' + name:<36}{value:>10.3f}{goal:>10}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"throughput_x_realtime": speed, "padding_efficiency": pad, "args": vars(args)}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
