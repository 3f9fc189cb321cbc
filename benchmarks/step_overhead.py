"""Lightning's per-step overhead and the frozen encoder's memory saving, on CPU at tiny size.

1. Step time: ``SpeechLLMModule`` under ``L.Trainer`` versus a hand-written PyTorch loop on
   the same tiny model (wavlm encoder -> downsampler -> llama + LoRA, same seed, same fixed
   batches, same AdamW parameter groups and schedule). A step is timed end to end, from one
   step's end to the next (batch fetch, hooks, metric bookkeeping and the optimizer
   included); warm-up steps are dropped and the median over repeats is reported. A third
   variant, Lightning with the module's ``self.log`` calls removed, attributes the overhead.
2. Memory: the same model with the encoder frozen (as ``SpeechLLM`` runs it) versus
   trainable, each in a fresh subprocess (``ru_maxrss`` is a process-lifetime peak): peak RSS
   growth over a few steps, and the bytes autograd saves for backward (deterministic).

Usage::

    python benchmarks/step_overhead.py --steps 40 --batch-size 4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch

from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.encoder import AudioEncoder
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm, tiny_lora
from speechllm.testing import tiny_batches
from speechllm.training.module import SpeechLLMModule
from speechllm.training.schedule import warmup_decay

TRAINABLE = ["downsampler", "layer_weights", "lora"]
MEMORY_ENCODER = dict(
    hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256
)
LR = 1e-3
# lightning: SpeechLLMModule as shipped; no_log: its self.log calls made no-ops; bare: also
# without its non-finite loss/gradient checks (forward + loss only).
LIGHTNING_VARIANTS = ("lightning", "lightning_no_log", "lightning_bare")
SEED = 0


def build_module(total_steps: int, **encoder_overrides: Any) -> SpeechLLMModule:
    """The tiny model, built identically for every variant."""
    torch.manual_seed(SEED)
    model = SpeechLLM(
        tiny_encoder("wavlm", **encoder_overrides),
        partial(ConvDownsampler),
        tiny_llm("llama", adapters={"default": tiny_lora()}),
    )
    return SpeechLLMModule(
        model,
        optimizer=partial(torch.optim.AdamW, lr=LR),
        scheduler=partial(warmup_decay, warmup_steps=min(10, total_steps)),
        trainable=TRAINABLE,
    )


def plain_optimizer(
    module: SpeechLLMModule, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over the parameters that require grad, grouped (decay on matrices) as the module."""
    params = [p for p in module.model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": module.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LR)
    return optimizer, warmup_decay(optimizer, total_steps, warmup_steps=min(10, total_steps))


class _Cycle:
    """Endless iteration over fixed batches; the same iterable feeds both loops."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches = batches

    def __iter__(self):
        k = 0
        while True:
            yield self.batches[k % len(self.batches)]
            k += 1


# ---------------------------------------------------------------- step time
Durations = list[tuple[float, float]]  # (wall, process CPU) seconds per step


def _stamp() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _durations(stamps: list[tuple[float, float]]) -> Durations:
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:], strict=False)]


def run_plain(batches: list[dict[str, Any]], total: int) -> tuple[Durations, list[float]]:
    module = build_module(total)
    module.train()
    optimizer, scheduler = plain_optimizer(module, total)
    stamps, losses = [_stamp()], []
    for _, batch in zip(range(total), _Cycle(batches), strict=False):
        optimizer.zero_grad(set_to_none=True)
        loss = module.model(**batch).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        stamps.append(_stamp())
    return _durations(stamps), losses


class _StepTimer(L.Callback):
    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []
        self.losses: list[float] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps.append(_stamp())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.losses.append(float(outputs["loss"]))
        self.stamps.append(_stamp())


class _NoLogModule(SpeechLLMModule):
    """The module with ``self.log`` a no-op: isolates the cost of its metric logging."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


class _BareModule(_NoLogModule):
    """Forward and loss only (no logging, no non-finite checks): Lightning's own cost."""

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self(batch).loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        pass


def run_lightning(
    batches: list[dict[str, Any]], total: int, cls: type[SpeechLLMModule] = SpeechLLMModule
) -> tuple[Durations, list[float]]:
    module = build_module(total)
    module.__class__ = cls  # same weights and state; only the step hooks differ
    timer = _StepTimer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=total,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=_Cycle(batches))
    return _durations(timer.stamps), timer.losses


def _summary(runs: list[Durations]) -> dict[str, float]:
    """Wall and CPU medians over every timed step, and the contention-robust "best": for each
    step (the same batch in every repeat) its fastest repeat, averaged over the steps."""
    wall = [w for run in runs for w, _ in run]
    cpu = [c for run in runs for _, c in run]
    best = [min(run[k][0] for run in runs) for k in range(len(runs[0]))]
    return {
        "wall_median_ms": 1e3 * statistics.median(wall),
        "wall_p10_ms": 1e3 * statistics.quantiles(wall, n=10)[0],
        "wall_p90_ms": 1e3 * statistics.quantiles(wall, n=10)[-1],
        "wall_best_ms": 1e3 * statistics.fmean(best),
        "cpu_median_ms": 1e3 * statistics.median(cpu),
        "samples": len(wall),
    }


def time_steps(
    steps: int, warmup: int, repeats: int, batch_size: int, tasks: tuple[str, ...]
) -> dict[str, Any]:
    """Interleaved repeats of each variant, timed per step after warm-up."""
    batches = tiny_batches(num_batches=4, batch_size=batch_size, tasks=tasks, seed=SEED)
    total = warmup + steps
    runners = {
        "plain": partial(run_plain, batches, total),
        "lightning": partial(run_lightning, batches, total),
        "lightning_no_log": partial(run_lightning, batches, total, _NoLogModule),
        "lightning_bare": partial(run_lightning, batches, total, _BareModule),
    }
    runs: dict[str, list[Durations]] = {name: [] for name in runners}
    losses: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, runner in runners.items():
            step_times, losses[name] = runner()
            runs[name].append(step_times[warmup:])
    result: dict[str, Any] = {name: _summary(r) for name, r in runs.items()}
    for name in LIGHTNING_VARIANTS:
        for stat in ("wall_median_ms", "wall_best_ms", "cpu_median_ms"):
            result[name][f"{stat[:-3]}_ratio"] = result[name][stat] / result["plain"][stat]
    result["max_loss_diff_lightning_vs_plain"] = max(
        abs(a - b) for a, b in zip(losses["lightning"], losses["plain"], strict=True)
    )
    return result


# ---------------------------------------------------------------- memory
class _GradEncoder(AudioEncoder):
    """``AudioEncoder`` with the wrapped model run under grad: the trainable-encoder baseline."""

    def forward(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, keys: list[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        frames = self.layer_weights(torch.stack(self.hidden_states(audio, audio_lengths)))
        lengths = self.output_lengths(audio_lengths).clamp(max=frames.shape[1])
        mask = torch.arange(frames.shape[1], device=frames.device)[None, :] < lengths[:, None]
        return frames * mask[..., None].to(frames.dtype), mask


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_variant(variant: str, batch_size: int, steps: int = 3) -> dict[str, Any]:
    """Peak RSS growth and saved-for-backward bytes of a few training steps (own process)."""
    module = build_module(steps, **MEMORY_ENCODER)
    if variant == "trainable":
        module.model.encoder.__class__ = _GradEncoder
        module.model.encoder.model.requires_grad_(True)
    module.train()
    optimizer, scheduler = plain_optimizer(module, steps)
    batches = tiny_batches(num_batches=steps, batch_size=batch_size, seed=SEED)
    param_storages = {p.untyped_storage().data_ptr() for p in module.parameters()}
    saved = {"bytes": 0, "activation_bytes": 0}
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved["bytes"] += t.numel() * t.element_size()
        ptr = t.untyped_storage().data_ptr()
        if ptr not in param_storages and ptr not in seen:
            seen.add(ptr)
            saved["activation_bytes"] += t.untyped_storage().nbytes()
        return t

    rss_before = _rss_bytes()
    for i, batch in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        if i == 0:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = module.model(**batch).loss
        else:
            loss = module.model(**batch).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    trainable = [p for p in module.parameters() if p.requires_grad]
    return {
        "trainable_params": sum(p.numel() for p in trainable),
        "saved_for_backward_mb": saved["bytes"] / 2**20,
        "saved_activations_mb": saved["activation_bytes"] / 2**20,
        "peak_rss_growth_mb": max(0, peak - rss_before) / 2**20,
        "peak_rss_mb": peak / 2**20,
    }


def measure_memory(batch_size: int, threads: int) -> dict[str, Any]:
    out = {}
    for variant in ("frozen", "trainable"):
        cmd = [sys.executable, __file__, "--variant", variant, "--mem-batch-size", str(batch_size)]
        cmd += ["--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"memory variant {variant} failed:\n{proc.stderr[-3000:]}")
        out[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ---------------------------------------------------------------- report
def markdown(result: dict[str, Any]) -> str:
    t, m = result["step_time"], result["memory"]
    lines = [
        f"Step time (CPU, batch {result['args']['batch_size']}, tasks {result['args']['tasks']}, "
        f"{result['args']['repeats']} x {result['args']['steps']} steps after "
        f"{result['args']['warmup']} warm-up, {result['machine']['torch_threads']} thread(s))",
        "",
        "| loop | wall median ms | p10 | p90 | wall best ms | CPU median ms "
        "| / plain (median) | / plain (best) | / plain (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("plain", *LIGHTNING_VARIANTS):
        r = t[name]
        ratios = [r.get(f"{k}_ratio", 1.0) for k in ("wall_median", "wall_best", "cpu_median")]
        lines.append(
            f"| {name} | {r['wall_median_ms']:.2f} | {r['wall_p10_ms']:.2f} "
            f"| {r['wall_p90_ms']:.2f} | {r['wall_best_ms']:.2f} | {r['cpu_median_ms']:.2f} | "
            + " | ".join(f"{x:.3f}" for x in ratios)
            + " |"
        )
    lines += [
        "",
        f"Memory (encoder {MEMORY_ENCODER}, batch {result['args']['mem_batch_size']})",
        "",
        "| encoder | trainable params | saved for backward MB | saved activations MB "
        "| peak RSS growth MB |",
        "|---|---|---|---|---|",
    ]
    for name in ("frozen", "trainable"):
        r = m[name]
        lines.append(
            f"| {name} | {r['trainable_params']:,} | {r['saved_for_backward_mb']:.2f} "
            f"| {r['saved_activations_mb']:.2f} | {r['peak_rss_growth_mb']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each loop")
    parser.add_argument("--batch-size", type=int, default=4, help="items per timed batch")
    parser.add_argument(
        "--tasks",
        default="asr",
        help="comma-separated tasks of the timed batches (the module logs one loss per task)",
    )
    parser.add_argument("--mem-batch-size", type=int, default=8, help="items per memory batch")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/step_overhead.json"))
    parser.add_argument("--variant", choices=["frozen", "trainable"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # library chatter (eval-mode modules, no val loader...)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if args.variant:  # child process of measure_memory
        print(json.dumps(memory_variant(args.variant, args.mem_batch_size)))
        return

    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "versions": {"torch": torch.__version__, "lightning": L.__version__},
        "machine": {
            "cpu_count": os.cpu_count(),
            "affinity_cpus": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "step_time": time_steps(
            args.steps, args.warmup, args.repeats, args.batch_size, tuple(args.tasks.split(","))
        ),
        "memory": measure_memory(args.mem_batch_size, args.threads),
    }
    ratio = result["step_time"]["lightning"]["wall_median_ratio"]
    result["lightning_over_plain"] = ratio
    result["goal_met"] = ratio <= 1.10
    print(markdown(result))
    t = result["step_time"]["lightning"]
    verdict = "met" if result["goal_met"] else "MISSED"
    print(
        f"\nLightning / plain = {ratio:.3f} wall median (goal <= 1.10: {verdict}); "
        f"{t['wall_best_ratio']:.3f} wall best, {t['cpu_median_ratio']:.3f} CPU median"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
