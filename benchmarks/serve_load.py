"""Load test of ``speechllm-serve`` on loopback: requests/s and latency at concurrency 1, 8 and
32, dynamic batching off (``--max-batch-size 1``) vs on, and every answer checked against the
same request answered alone by ``speechllm.inference.answer`` (lost or wrong answers counted).

The server runs as its own process (``python -m speechllm.cli.serve``), as deployed; clients
are threads with the official ``openai`` client, one request in four streamed. Bounded: at most
``--requests`` per setting and ``--time-limit`` seconds per setting.

Usage::

    python benchmarks/serve_load.py [--model EXPORT] [--requests 64] [--max-tokens 16]

The result (with its command, date, commit and machine) goes to
``benchmarks/results/serve_load.json``, which is committed: the README's serving table is
:func:`readme_table` of it (``tests/benchmarks/test_serve_load.py``).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import openai
import torch

from speechllm.inference import answer, load_model
from speechllm.models.tiny import save_tiny_export
from speechllm.provenance import provenance
from speechllm.testing import write_tiny_manifest

INSTRUCTIONS = ["Transcribe the audio.", "What is the intent of this request?", "Say it."]
CONCURRENCY = (1, 8, 32)


def start_server(model: str, batch_size: int, args: argparse.Namespace) -> tuple[Any, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "speechllm.cli.serve", model, "--name", "bench"]
    command += ["--port", str(port), "--max-batch-size", str(batch_size)]
    command += ["--max-wait-ms", str(args.max_wait_ms), "--device", "cpu", "--log-level", "warning"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            urlopen(f"{url}/health", timeout=5).read()
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.5)


def batches_served(url: str) -> tuple[int, int]:
    health = json.loads(urlopen(f"{url}/health", timeout=30).read())
    return health["batches"], health["items"]


def load(
    url: str, cases: list[dict], expected: list[str], concurrency: int, requests: int, args
) -> dict:
    """``requests`` requests from ``concurrency`` threads; latencies and answer checks."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    lost = wrong = 0
    deadline = time.monotonic() + args.time_limit

    def worker() -> None:
        nonlocal lost, wrong
        while (j := next(counter)) < requests and time.monotonic() < deadline:
            case, stream = cases[j % len(cases)], j % 4 == 3
            start = time.perf_counter()
            try:
                reply = client.chat.completions.create(
                    **case, model="bench", max_tokens=args.max_tokens, stream=stream
                )
                if stream:
                    text = "".join(c.choices[0].delta.content or "" for c in reply)
                else:
                    text = reply.choices[0].message.content
            except openai.APIError:
                text = None
            seconds = time.perf_counter() - start
            with lock:
                latencies.append(seconds)
                lost += text is None
                wrong += text is not None and text != expected[j % len(cases)]

    batches, items = batches_served(url)
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    batches, items = (b - a for a, b in zip((batches, items), batches_served(url), strict=True))
    cuts = statistics.quantiles(latencies, n=20, method="inclusive")
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * cuts[18], 1),
        "mean_batch": round(items / max(batches, 1), 2),
        "lost": lost,
        "wrong": wrong,
    }


def readme_table(result: dict[str, Any]) -> str:
    """The README's serving table, speed-ups and provenance, from a result of :func:`main`."""
    lines = [
        "| batching | concurrency | requests | req/s | p50 ms | p95 ms | mean batch | lost "
        "| wrong |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['batching']} | {r['concurrency']} | {r['requests']} | "
            f"{r['requests_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
            f"{r['mean_batch']:.1f} | {r['lost']} | {r['wrong']} |"
        )
    speedup = result["speedup_on_vs_off"]
    answered = sum(r["requests"] for r in result["rows"])
    wrong = "all" if result["wrong"] == 0 else f"{answered - result['wrong']} of"
    lines += [
        "",
        "Batching speed-up in requests/s at concurrency "
        + ", ".join(f"{c}: {s:.2f}x" for c, s in speedup.items())
        + f"; {result['lost']} requests lost, and {wrong} {answered} answers equal the same"
        f" requests answered alone. Measured {result['date']} ({result['machine']}) at commit"
        f" {result['commit'][:10]}: `{result['command']}`, `benchmarks/results/serve_load.json`.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="export folder (default: a fresh untrained tiny export)")
    parser.add_argument("--requests", type=int, default=64, help="requests per setting")
    parser.add_argument("--time-limit", type=float, default=120, help="seconds per setting")
    parser.add_argument("--max-tokens", type=int, default=16, help="max_tokens per request")
    parser.add_argument("--recordings", type=int, default=12, help="distinct requests cycled")
    parser.add_argument("--max-batch-size", type=int, default=32, help="batch cap when on")
    parser.add_argument("--max-wait-ms", type=float, default=10, help="batching wait")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args()
    recorded = provenance("benchmarks/serve_load.py", sys.argv[1:])
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="serve_load-"))
    model_path = args.model or str(save_tiny_export(work / "export"))
    manifest = write_tiny_manifest(work / "recordings", args.recordings, tasks=("asr",))
    files = [manifest.parent / json.loads(line)["audio"] for line in manifest.open()]
    cases, expected = [], []
    reference = load_model(model_path)
    for i, path in enumerate(files):
        instruction = INSTRUCTIONS[i % len(INSTRUCTIONS)]
        data = base64.b64encode(path.read_bytes()).decode()
        content = [
            {"type": "text", "text": instruction},
            {"type": "input_audio", "input_audio": {"data": data, "format": "flac"}},
        ]
        cases.append({"messages": [{"role": "user", "content": content}]})
        expected.append(answer(reference, path, instruction, max_new_tokens=args.max_tokens))

    rows = []
    for batching, batch_size in (("off", 1), ("on", args.max_batch_size)):
        process, url = start_server(model_path, batch_size, args)
        try:
            load(url, cases, expected, 2, 2, args)  # warm-up
            for concurrency in CONCURRENCY:
                row = {
                    "batching": batching,
                    **load(url, cases, expected, concurrency, args.requests, args),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            process.terminate()
            process.wait(60)

    rate = {(r["batching"], r["concurrency"]): r["requests_per_s"] for r in rows}
    speedup = {c: round(rate["on", c] / rate["off", c], 2) for c in CONCURRENCY}
    columns = {"batching": "batching", "concurrency": "concurrency", "requests": "requests"}
    columns.update(requests_per_s="req/s", p50_ms="p50 ms", p95_ms="p95 ms")
    columns.update(mean_batch="mean batch", lost="lost", wrong="wrong")
    print("| " + " | ".join(columns.values()) + " |")
    print("|---" * len(columns) + "|")
    for r in rows:
        print("| " + " | ".join(str(r[key]) for key in columns) + " |")
    print("speed-up (req/s, on / off): " + ", ".join(f"{c}: {s}x" for c, s in speedup.items()))
    result = {
        **recorded,
        "model": args.model or "untrained tiny WavLM + Llama (save_tiny_export)",
        "device": "cpu",
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "max_batch_size_on": args.max_batch_size,
        "max_wait_ms": args.max_wait_ms,
        "distinct_requests": len(cases),
        "rows": rows,
        "speedup_on_vs_off": {str(c): s for c, s in speedup.items()},
        "lost": sum(r["lost"] for r in rows),
        "wrong": sum(r["wrong"] for r in rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
