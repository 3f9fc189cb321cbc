"""The scale check: a curriculum across a stage transition under DDP and FSDP, save, resume.

Random weights at real sizes, built from configs (nothing downloaded): a Whisper-large-v3-sized
encoder (32 layers, d 1280, 128 mels; 1 s windows, not 30 s) and a Llama-3.2-1B-sized LLM
(16 layers, d 2048, 128k vocabulary), both bf16, LoRA on q/v. For each strategy, one process:

    run 1: stage ``align`` (S steps) ─► stage ``lora_warmup`` (S steps) ─► save (step 2S)
    run 2: resume from that checkpoint ─► stage ``multitask`` (2 steps) ─► save (step 2S+2)

and it reports samples/s, LLM tokens/s, peak memory and the LLM's model FLOPs utilisation
(frozen base: 4 x block parameters per token, forward plus input gradients; attention and the
encoder left out) against the GPU's dense bf16 peak. ``--size toy`` runs the same code on tiny
models on CPU (tests/benchmarks/test_gpu_check.py), so the script cannot rot unnoticed.

Usage::

    python benchmarks/gpu_check.py                       # on a GPU, real sizes (< 8 minutes)
    python benchmarks/gpu_check.py --size toy --steps 2  # on CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor
from tqdm import tqdm

from speechllm.config import compose
from speechllm.testing import write_tiny_manifest
from speechllm.training.curriculum import CurriculumCallback
from speechllm.training.train import build

RESULTS = Path(__file__).resolve().parent / "results"
SIZES: dict[str, list[str]] = {
    "real": [
        "encoder=tiny_whisper",
        "+encoder.d_model=1280",
        "+encoder.encoder_layers=32",
        "+encoder.encoder_attention_heads=20",
        "+encoder.encoder_ffn_dim=5120",
        "+encoder.num_mel_bins=128",
        "+encoder.dtype=bfloat16",
        "+llm.hidden_size=2048",
        "+llm.intermediate_size=8192",
        "+llm.num_hidden_layers=16",
        "+llm.num_attention_heads=32",
        "+llm.num_key_value_heads=8",
        "+llm.vocab_size=128256",
        "+llm.max_position_embeddings=4096",
        "+llm.dtype=bfloat16",
    ],
    "toy": ["encoder=tiny_whisper"],
}
# trainer presets per strategy and device; one process each
TRAINERS: dict[tuple[str, bool], list[str]] = {
    ("ddp", True): ["trainer=ddp", "trainer.devices=1"],
    ("fsdp", True): ["trainer=fsdp", "trainer.devices=1"],
    ("ddp", False): ["trainer=ddp_cpu", "trainer.devices=1"],
    ("fsdp", False): [
        "trainer=fsdp",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.precision=32-true",
        "+trainer.strategy.process_group_backend=gloo",
    ],
}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


class Throughput(L.Callback):
    """Times training steps after the first of each run and counts items and LLM tokens."""

    def __init__(self) -> None:
        self.items = self.tokens = self.steps = 0
        self.seconds = 0.0
        self._t0 = 0.0
        self._tokens_now = 0
        self.block_params = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        llm = pl_module.model.llm
        self.block_params = sum(
            p.numel() for n, p in llm.named_parameters() if ".layers." in n and "lora_" not in n
        )
        llm.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        self._tokens_now += int(mask.sum()) if mask is not None else 0

    def on_train_batch_start(self, trainer: L.Trainer, *_: Any) -> None:
        _sync()
        self._t0, self._tokens_now = time.perf_counter(), 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, _o, batch, i):
        _sync()
        if i == 0:  # the first step of a run pays for lazy initialisation
            return
        self.seconds += time.perf_counter() - self._t0
        self.items += len(batch["ids"])
        self.tokens += self._tokens_now
        self.steps += 1


def full(p: torch.Tensor) -> torch.Tensor:
    return p.full_tensor() if isinstance(p, DTensor) else p


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_memory_gib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)


def peak_tflops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _curriculum(trainer: L.Trainer) -> CurriculumCallback:
    return next(c for c in trainer.callbacks if isinstance(c, CurriculumCallback))


def run_strategy(strategy: str, size: str, steps: int, data: Path, out: Path) -> dict[str, Any]:
    """Run 1 across the align -> lora_warmup transition, then run 2 resumed into multitask."""
    gpu = torch.cuda.is_available()
    base = [
        "experiment=tiny_smoke",
        *SIZES[size],
        *TRAINERS[(strategy, gpu)],
        f"data.train_manifests=[{data}]",
        f"data.val_manifests=[{data}]",
        f"curriculum.stages.align.steps={steps}",
        f"curriculum.stages.lora_warmup.steps={steps}",
        "trainer.val_check_interval=1000",
        "trainer.limit_val_batches=0",
        f"callbacks.checkpoint.every_n_train_steps={2 * steps}",
        "callbacks.progress.refresh_rate=0",
    ]
    meter = Throughput()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    cfg = compose([*base, f"trainer.max_steps={2 * steps}"], output_dir=out)
    module, datamodule, trainer = build(cfg)
    trainer.callbacks.append(meter)
    trainer.fit(module, datamodule=datamodule)
    stage_after_run1 = _curriculum(trainer).progress.index
    lora_b = [p for n, p in module.model.named_parameters() if "lora_B" in n]
    lora_trained = all(bool(full(p).abs().sum() > 0) for p in lora_b)  # B starts at zero
    ckpt = out / "checkpoints" / "last.ckpt"
    cfg = compose([*base, f"trainer.max_steps={2 * steps + 2}", f"ckpt_path={ckpt}"], out)
    module, datamodule, trainer = build(cfg)
    trainer.callbacks.append(meter)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt))
    flops = 4 * meter.block_params * meter.tokens
    peak = peak_tflops()
    return {
        "strategy": strategy,
        "stage_after_run1": stage_after_run1,
        "lora_trained_in_stage_2": lora_trained,
        "stage_after_resume": _curriculum(trainer).progress.index,
        "resumed_to_step": trainer.global_step,
        "timed_steps": meter.steps,
        "samples_per_s": meter.items / meter.seconds,
        "tokens_per_s": meter.tokens / meter.seconds,
        "peak_memory_gib": peak_memory_gib(),
        "llm_block_params": meter.block_params,
        "mfu": flops / meter.seconds / (peak * 1e12) if peak else None,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="real")
    parser.add_argument("--steps", type=int, default=10, help="steps per stage in run 1")
    parser.add_argument("--strategies", nargs="+", default=["ddp", "fsdp"])
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu_check.json")
    parser.add_argument("--work", type=Path, default=Path("runs/gpu_check"))
    args = parser.parse_args(argv)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    data = write_tiny_manifest(args.work / "data", 64)
    rows = [
        run_strategy(s, args.size, args.steps, data, args.work / s)
        for s in tqdm(args.strategies, desc="strategies")
    ]
    if dist.is_initialized():  # both runs shared one process group; leave none behind
        dist.destroy_process_group()
    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if gpu else f"cpu ({platform.machine()})"
    print(f"\n{args.size} size on {device}")
    print("| strategy | samples/s | tokens/s | peak GiB | MFU | resumed to step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        print(
            f"| {r['strategy']} | {r['samples_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
            f"{r['peak_memory_gib']:.2f} | {mfu} | {r['resumed_to_step']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"size": args.size, "device": device, "torch": torch.__version__, "date": time.ctime()}
    args.out.write_text(json.dumps({**meta, "runs": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
