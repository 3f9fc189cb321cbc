"""A tiny world for training tests: model, fixed batches and a resumable data module."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from speechllm.data.datamodule import CurriculumData
from speechllm.models.ctc import CTCAligner
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm, tiny_lora
from speechllm.training.module import SpeechLLMModule


class _Stream(IterableDataset):
    def __init__(self, batches: list[dict[str, Any]], start: int) -> None:
        self.batches, self.start = batches, start

    def __iter__(self) -> Iterator[dict[str, Any]]:
        k = self.start
        while True:
            yield self.batches[k % len(self.batches)]
            k += 1


class FixedBatches(L.LightningDataModule, CurriculumData):
    """Cycles fixed batches from the restored step, like the real sampler, and records the
    mixture schedules and validation tasks the curriculum hands it."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        super().__init__()
        self.batches = batches
        self.schedules: list[list[tuple[int, dict[str, float]]]] = []
        self.val_tasks: list[set[str] | None] = []

    def set_mixture_schedule(self, schedule: list[tuple[int, dict[str, float]]]) -> None:
        self.schedules.append(schedule)

    def set_val_tasks(self, tasks: set[str] | None) -> None:
        self.val_tasks.append(tasks)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.batches[:2], batch_size=None)

    def train_dataloader(self) -> DataLoader:
        start = self.trainer.global_step * self.trainer.accumulate_grad_batches
        return DataLoader(_Stream(self.batches, start), batch_size=None)


def make_module(lr: float = 3e-3, seed: int = 0, ctc: bool = False) -> SpeechLLMModule:
    torch.manual_seed(seed)
    model = SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler),
        tiny_llm("llama", adapters={"default": tiny_lora()}, initializer_range=0.3),
        ctc=partial(CTCAligner, negatives=64) if ctc else None,
    )
    return SpeechLLMModule(
        model,
        optimizer=partial(torch.optim.AdamW, lr=lr),
        scheduler=partial(_constant),
    )


def _constant(
    optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def make_trainer(max_steps: int, callbacks: list[L.Callback], **kwargs: Any) -> L.Trainer:
    settings: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    settings.update(kwargs)
    return L.Trainer(callbacks=callbacks, **settings)
