"""OpenMP's wait policy and a training step on a real base, idle and beside other work.

``speechllm`` sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads (``speechllm/__init__.py``):
with OpenMP's default, idle worker threads spin, and when another process holds a core the
spinning threads and the working one fight for it. This measures what that choice buys: a
LoRA training step of SmolLM2-135M-Instruct (fp32, r=8 on q/v, batch 8 rows of 77 tokens; the
demo's step without the audio side), 2 torch threads, with the runtime's default policy and
with ``PASSIVE``, on an idle machine and beside a process that keeps one core busy. Each setting
runs in a fresh process (the policy is read once, when torch loads OpenMP).

Then the same four settings for whole commands a user runs, timed end to end: two entry points
on the committed model in the box (``recipes/synthetic_real/model``: ``speechllm-infer`` on one
clip, ``speechllm-eval`` on its 24 check clips) and a slice of the test suite. In both policies
torch loads before ``speechllm`` does, so the package's default cannot hide the runtime's; each
command otherwise runs as its console script would.

Usage::

    speechllm-fetch smollm2 && speechllm-fetch whisper-tiny.en
    python benchmarks/thread_policy.py --steps 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "thread_policy.json"
MODEL = REPO / "recipes" / "synthetic_real" / "model"
POLICIES = ("default", "PASSIVE")
COMMANDS: dict[str, tuple[str, list[str]]] = {
    # name: (module whose main() runs, its arguments)
    "speechllm-infer, one clip": (
        "speechllm.cli.infer",
        ["--model", str(MODEL), str(MODEL / "check" / "test-000002.flac"), "Transcribe the audio."],
    ),
    "speechllm-eval, 24 clips": (
        "speechllm.cli.eval",
        [f"checkpoint={MODEL}", f"manifest={MODEL / 'check' / 'check.jsonl'}"],
    ),
    "pytest tests/models/test_speech_llm.py": (
        "pytest",
        ["-q", "-p", "no:cacheprovider", str(REPO / "tests" / "models" / "test_speech_llm.py")],
    ),
}


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


def run(argv: list[str], policy: str, loaded: bool, cwd: Path | None = None) -> str:
    """``argv``'s stdout, run with ``policy`` (``default``: none set) and, if ``loaded``,
    beside a process that keeps one core busy."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    other = burner() if loaded else None
    try:
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    finally:
        if other is not None:
            other.kill()
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def measure(policy: str, loaded: bool, steps: int) -> float:
    out = run([sys.executable, __file__, "--worker", "--steps", str(steps)], policy, loaded)
    return statistics.median(json.loads(out.strip().splitlines()[-1]))


def time_command(name: str, policy: str, loaded: bool, workdir: Path) -> float:
    """Wall seconds of one of ``COMMANDS`` from its first import (torch's), in a scratch
    folder."""
    module, args = COMMANDS[name]
    code = (
        "import time; start = time.perf_counter(); import sys, torch; "
        f"sys.argv = {[name.split(',')[0], *args]!r}; from {module} import main; code = main(); "
        "print(time.perf_counter() - start); sys.exit(code)"
    )
    out = run([sys.executable, "-c", code], policy, loaded, cwd=workdir)
    return float(out.strip().splitlines()[-1])


def steps_table(result: dict) -> str:
    """The training step under each setting."""
    lines = ["| OMP_WAIT_POLICY | machine | median step (s) |", "|---|---|---|"]
    for r in result["rows"]:
        where = "one core busy with another job" if r["other_job"] else "idle"
        lines.append(f"| {r['policy']} | {where} | {r['step_s']} |")
    return "\n".join(lines)


def commands_table(result: dict) -> str:
    """The commands' wall time under each setting (the README shows this table)."""
    seconds = {
        (r["command"], r["policy"], r["other_job"]): r["seconds"] for r in result["commands"]
    }
    lines = [
        "| command | default, idle | PASSIVE, idle | default, one core busy | "
        "PASSIVE, one core busy |",
        "|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["command"] for r in result["commands"]):
        cells = [f"{seconds[name, p, busy]} s" for busy in (False, True) for p in POLICIES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=8, help="timed steps per setting")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.steps)))
        return
    from speechllm.provenance import provenance

    rows = []
    for loaded in (False, True):
        for policy in POLICIES:
            seconds = measure(policy, loaded, args.steps)
            rows.append({"policy": policy, "other_job": loaded, "step_s": round(seconds, 2)})
            print(f"{policy:8s} {'beside a busy core' if loaded else 'idle':18s} {seconds:.2f} s")
    commands = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in COMMANDS:
            for loaded in (False, True):
                for policy in POLICIES:
                    seconds = time_command(name, policy, loaded, Path(workdir))
                    commands.append(
                        {
                            "command": name,
                            "policy": policy,
                            "other_job": loaded,
                            "seconds": round(seconds, 1),
                        }
                    )
                    print(f"{name:40s} {policy:8s} {'loaded' if loaded else 'idle':6s} "
                          f"{seconds:.1f} s")  # fmt: skip
    result = {**provenance("benchmarks/thread_policy.py"), "rows": rows, "commands": commands}
    print(steps_table(result) + "\n\n" + commands_table(result))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
