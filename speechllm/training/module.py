"""SpeechLLMModule: the thin LightningModule around a SpeechLLM."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import lightning as L
import torch
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LRScheduler

from speechllm.models.speech_llm import SpeechLLM, SpeechLLMOutput
from speechllm.training.schedule import warmup_decay

OptimizerFactory = Callable[[Iterable[dict[str, Any]]], Optimizer]
SchedulerFactory = Callable[..., LRScheduler]


class SpeechLLMModule(L.LightningModule):
    """Steps, logging and optimizers; the model, data and curriculum live elsewhere.

    Checkpoints hold only the trainable parts (downsampler, layer weights, adapters), so a
    checkpoint of a 7B-LLM run stays megabytes; the adapters present are recorded so that
    resuming re-attaches them before the weights are loaded.

    Args:
        model: the SpeechLLM.
        optimizer: factory over parameter groups (Hydra ``_partial_``), AdamW by default.
        scheduler: factory ``(optimizer, total_steps=...)`` (Hydra ``_partial_``); its horizon
            is the current curriculum stage's length, else ``trainer.max_steps``.
        trainable: groups to train when no curriculum sets them.
        weight_decay: applied to matrices only (not norms, biases or layer weights).
    """

    def __init__(
        self,
        model: SpeechLLM,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        trainable: list[str] | None = None,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer or partial(AdamW, lr=1e-3)
        self.scheduler_factory = scheduler or partial(warmup_decay, warmup_steps=100)
        self.weight_decay = weight_decay
        self.schedule_horizon: int | None = None
        self.strict_loading = False  # frozen bases are not in checkpoints; checked by hand
        self.model.set_trainable(list(trainable or ["downsampler", "layer_weights"]))

    # ---------------------------------------------------------------- steps
    def forward(self, batch: dict[str, Any]) -> SpeechLLMOutput:
        return self.model(**batch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def _step(self, batch: dict[str, Any], split: str) -> torch.Tensor:
        out = self(batch)
        size = len(batch["tasks"])
        self.log(
            f"{split}/loss", out.loss, batch_size=size, prog_bar=True, sync_dist=split == "val"
        )
        sums: dict[str, list[torch.Tensor]] = defaultdict(list)
        for i, task in enumerate(batch["tasks"]):
            sums[task].append(i)
        for task, idx in sums.items():
            loss = out.item_loss_sum[idx].sum() / out.item_tokens[idx].sum()
            self.log(
                f"{split}/{task}/loss", loss.detach(), batch_size=len(idx), sync_dist=split == "val"
            )
        return out.loss

    # ---------------------------------------------------------------- optimizers
    def configure_optimizers(self) -> dict[str, Any]:
        params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("no trainable parameters: check the curriculum's trainable groups")
        groups = [
            {"params": [p for _, p in params if p.ndim >= 2], "weight_decay": self.weight_decay},
            {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = self.optimizer_factory([g for g in groups if g["params"]])
        horizon = self.schedule_horizon or self.trainer.max_steps
        if horizon is None or horizon < 1:
            raise ValueError("set trainer.max_steps or give every curriculum stage its steps")
        scheduler = self.scheduler_factory(optimizer, total_steps=horizon)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = {f"model.{k}" for k in self.model.trainable_state_dict()}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["speechllm"] = {"adapters": self.model.llm.attached_adapters}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for name in checkpoint.get("speechllm", {}).get("adapters", []):
            if name not in self.model.llm.attached_adapters:
                self.model.llm.attach_adapter(name)
        expected = {f"model.{k}" for k in self.model.trainable_state_dict()}
        missing = expected - set(checkpoint["state_dict"])
        if missing:
            raise KeyError(f"checkpoint lacks trainable weights: {sorted(missing)[:5]} ...")
