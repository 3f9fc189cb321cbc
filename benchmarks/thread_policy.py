"""OpenMP's wait policy and a training step on a real base, idle and beside other work.

``speechllm`` sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads (``speechllm/__init__.py``):
with OpenMP's default, idle worker threads spin, and when another process holds a core the
spinning threads and the working one fight for it. This measures what that choice buys: a
LoRA training step of SmolLM2-135M-Instruct (fp32, r=8 on q/v, batch 8 rows of 77 tokens; the
demo's step without the audio side), 2 torch threads, with the runtime's default policy and
with ``PASSIVE``, on an idle machine and beside a process that keeps one core busy. Each setting
runs in a fresh process (the policy is read once, when torch loads OpenMP).

Usage::

    speechllm-fetch smollm2
    python benchmarks/thread_policy.py --steps 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "thread_policy.json"


def worker(steps: int) -> list[float]:
    """Step seconds in this process (its OMP_WAIT_POLICY set by the parent)."""
    import torch  # before speechllm, so its PASSIVE default cannot apply to the "default" run
    from peft import LoraConfig

    from speechllm.models import LLM
    from speechllm.models.fetch import fetch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    lora = LoraConfig(r=8, target_modules=["q_proj", "v_proj"])
    llm = LLM.from_pretrained(str(fetch("smollm2")), adapters={"default": lora})
    llm.attach_adapter("default")
    llm.set_adapters(active=["default"], trainable=["default"])
    params = llm.adapter_parameters("default")
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, 49152, (8, 77))
    mask = torch.ones_like(ids)
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        logits = llm(llm.embed(ids), mask)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times[2:]  # the first steps warm up allocators and kernels


def burner() -> subprocess.Popen:
    """A process that keeps one core busy, as another job on a shared machine would."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(policy: str, loaded: bool, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    other = burner() if loaded else None
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", "--steps", str(steps)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        if other is not None:
            other.kill()
    return statistics.median(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=8, help="timed steps per setting")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.steps)))
        return
    rows = []
    for loaded in (False, True):
        for policy in ("default", "PASSIVE"):
            seconds = measure(policy, loaded, args.steps)
            rows.append({"policy": policy, "other_job": loaded, "step_s": round(seconds, 2)})
            print(f"{policy:8s} {'beside a busy core' if loaded else 'idle':18s} {seconds:.2f} s")
    print("\n| OMP_WAIT_POLICY | machine | median step (s) |\n|---|---|---|")
    for r in rows:
        where = "one core busy with another job" if r["other_job"] else "idle"
        print(f"| {r['policy']} | {where} | {r['step_s']} |")
    OUT.parent.mkdir(exist_ok=True)
    from speechllm.provenance import provenance

    result = {**provenance("benchmarks/thread_policy.py"), "rows": rows}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
