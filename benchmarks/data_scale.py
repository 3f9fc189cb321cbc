"""Data at scale: peak RSS per process and batches/s, JSONL manifests versus lhotse Shar shards.

    nice -n 10 python benchmarks/data_scale.py [--sizes 10000 100000 1000000] [--batches 30]

For each corpus size, each path trains' data side alone (2 dataloader workers, rank 0 of 1) in
a fresh process: the JSONL path (``SpeechDataModule``: every line an object in the main process
and, by fork, in each worker) and the sharded path (``ShardedDataModule``: workers stream
shards). Reported: seconds to the first batch (the JSONL path reads every line first), batches/s
over the next ``--batches`` batches, x real time per core (audio seconds per CPU second the
workers and the main process spent on those batches: CPU time, so a loaded machine does not
deflate it as it does wall time; the wall-time figure per worker is kept beside it), and peak
RSS of the main process and of the largest worker.

Synthetic short clips (0.5-2 s, 2 tasks). To stay bounded on disk at 1M items, both paths reuse
a small pool of audio: manifest lines point at 64 files, and the shard index lists 2 real shard
files per task over and over (the stream opens them as it would distinct ones). Memory and
speed depend on the item count, not on the audio being distinct.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import Wav2Vec2FeatureExtractor

from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.features import Featurizer
from speechllm.data.sharded_datamodule import ShardedDataModule
from speechllm.data.shards import INDEX, read_shards
from speechllm.importers.shards import cuts_from_manifests, write_shards
from speechllm.provenance import provenance

AUDIO_FILES = 64
SHARD_ITEMS = 500
REAL_SHARDS = 2  # per task: one per worker lane
TASKS = ("asr", "ic")


def make_audio(root: Path, seed: int = 0) -> list[float]:
    """Quiet noise clips of 0.5-2 s; returns their durations."""
    rng = np.random.default_rng(seed)
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    durations = []
    for i in range(AUDIO_FILES):
        samples = int(rng.uniform(0.5, 2.0) * 16000)
        sf.write(root / "wavs" / f"{i}.flac", 0.05 * rng.standard_normal(samples), 16000)
        durations.append(samples / 16000)
    return durations


def write_manifest(path: Path, n: int, durations: list[float]) -> None:
    with open(path, "w") as f:
        for i in range(n):
            task = TASKS[i % 2]
            line = {
                "id": f"u{i:07d}",
                "audio": f"wavs/{i % AUDIO_FILES}.flac",
                "duration": durations[i % AUDIO_FILES],
                "task": task,
                "target": "turn it on" if task == "asr" else "on",
            }
            if task == "ic":
                line["labels"] = ["on", "off"]
            f.write(json.dumps(line) + "\n")


def write_scaled_index(real: Path, out: Path, n: int) -> None:
    """A shard folder of ``n`` items whose shard files are links cycling over the real ones."""
    for task, shards in read_shards(real).items():
        (out / task).mkdir(parents=True, exist_ok=True)
        rows = []
        cycle = itertools.cycle(shards)
        for i, shard in enumerate(itertools.islice(cycle, max(n // 2 // SHARD_ITEMS, 2))):
            names = {"cuts": f"cuts.{i:06d}.jsonl.gz", "recording": f"recording.{i:06d}.tar"}
            for key, name in names.items():
                (out / task / name).symlink_to(getattr(shard, key))
            rows.append({**names, "items": shard.items, "seconds": shard.seconds})
        index = {"shard_size": SHARD_ITEMS, "shards": rows}
        (out / task / INDEX).write_text(json.dumps(index))


def measure(path: str, source: str, batches: int) -> dict[str, float]:
    """One path in this (fresh) process: time to first batch, speed, peak RSS."""
    torch.set_num_threads(1)
    featurizer = Featurizer(Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True))
    settings = dict(num_workers=2, max_batch_seconds=200.0, pool_size=500)
    start = time.perf_counter()
    if path == "jsonl":
        data = SpeechDataModule(featurizer, [source], **settings)
    else:
        data = ShardedDataModule(featurizer, source, **settings)
    loader = iter(data.train_dataloader())
    next(loader)
    first = time.perf_counter() - start
    pids = [0] + [w.pid for w in loader._workers]  # 0: this process
    start, cpu, seconds = time.perf_counter(), _cpu_seconds(pids), 0.0
    for batch in itertools.islice(loader, batches):
        seconds += float(batch["audio_lengths"].sum()) / featurizer.sampling_rate
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds(pids) - cpu
    workers = max(_peak_rss_mb(w.pid) for w in loader._workers)  # alive: read /proc
    del loader
    return {
        "first_batch_s": first,
        "batches_per_s": batches / elapsed,
        "x_realtime_per_core": seconds / cpu,
        "x_realtime_per_worker_wall": seconds / elapsed / settings["num_workers"],
        "cpu_s": cpu,
        "main_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_rss_mb": workers,
    }


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of live processes (0: this one), from ``/proc/<pid>/stat``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid or 'self'}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _peak_rss_mb(pid: int) -> float:
    """A live process's peak resident set (``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=30, help="timed batches per run")
    parser.add_argument("--out", default="benchmarks/results/data_scale.json")
    parser.add_argument("--measure", nargs=2, metavar=("PATH", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child process of one run
        print(json.dumps(measure(*args.measure, args.batches)))
        return
    recorded = provenance("benchmarks/data_scale.py", sys.argv[1:])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        durations = make_audio(root)
        write_manifest(root / "real.jsonl", 2 * REAL_SHARDS * SHARD_ITEMS, durations)
        write_shards(
            cuts_from_manifests([root / "real.jsonl"]), root / "real", shard_size=SHARD_ITEMS
        )
        for n in args.sizes:
            write_manifest(root / f"{n}.jsonl", n, durations)
            write_scaled_index(root / "real", root / f"shards{n}", n)
            for path, source in (("jsonl", root / f"{n}.jsonl"), ("shar", root / f"shards{n}")):
                command = [sys.executable, __file__, "--measure", path, str(source)]
                command += ["--batches", str(args.batches)]
                run = subprocess.run(command, capture_output=True, text=True, check=True)
                row = {"path": path, "items": n, **json.loads(run.stdout.splitlines()[-1])}
                results.append(row)
                print(json.dumps(row), file=sys.stderr)
    header = f"{'path':<6}{'items':>9}{'1st batch s':>12}{'batch/s':>9}{'xRT/core':>9}"
    print(header + f"{'xRT/worker wall':>16}{'main MB':>9}{'worker MB':>10}")
    for r in results:
        print(
            f"{r['path']:<6}{r['items']:>9}{r['first_batch_s']:>12.1f}{r['batches_per_s']:>9.2f}"
            f"{r['x_realtime_per_core']:>9.0f}{r['x_realtime_per_worker_wall']:>16.0f}"
            f"{r['main_peak_rss_mb']:>9.0f}{r['worker_peak_rss_mb']:>10.0f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({**recorded, "results": results, "args": vars(args)}, indent=2) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
