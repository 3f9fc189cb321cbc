"""TextClassifierModule: two-step PEFT's step two on text alone, classification heads on an LLM.

Gema et al. (2023) stack a downstream LoRA on a clinical-domain LoRA and classify notes with a
head on the LLM's pooled states. This module is that setting without audio: each row is a text,
its task and its target labels; the LLM reads ``[bos] text [eos]`` (left-padded, as
``SpeechLLM`` lays out its rows) and the task's :class:`ClassificationHead` scores every label
from the pooled states (BCE, so multi-label and one-of-many tasks both fit; AUROC per label).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from speechllm.models.head import ClassificationHead
from speechllm.models.layout import RowLayout
from speechllm.models.llm import LLM, is_adapter_weight
from speechllm.training.optim import (
    DEFAULT_OPTIMIZER,
    DEFAULT_SCHEDULER,
    OptimizerFactory,
    SchedulerFactory,
    decay_groups,
    optimization,
)

Batch = dict[str, list[str]]
"""``texts``, ``tasks`` and ``targets`` (comma-separated labels), one entry per row."""


class TextClassifierModule(L.LightningModule):
    """Heads on a frozen decoder-only LLM whose ``trainable`` adapters train with them.

    Args:
        llm: the frozen LLM with its adapters declared (and a step-one adapter loaded through
            ``adapter_paths`` when stacking).
        heads: a head, or a factory taking ``hidden_size``, per task.
        trainable: adapters that train (e.g. ``[task]``, or ``[domain, task]``).
        active: adapters that run (default: ``trainable``); a frozen domain adapter is active
            but not trainable.
        optimizer: factory over parameter groups (Hydra ``_partial_``), AdamW by default.
        scheduler: factory ``(optimizer, total_steps=...)`` over ``trainer.max_steps``.
        weight_decay: on matrices only.
    """

    def __init__(
        self,
        llm: LLM,
        heads: dict[str, ClassificationHead | Callable[..., ClassificationHead]],
        trainable: list[str],
        active: list[str] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__()
        if llm.is_encoder_decoder:
            raise ValueError("text classification here needs a decoder-only (causal) LLM")
        if not heads:
            raise ValueError("give at least one task's head")
        self.llm = llm
        self.layout = RowLayout(llm)
        self.heads = nn.ModuleDict(
            {
                task: head if isinstance(head, nn.Module) else head(hidden_size=llm.hidden_size)
                for task, head in heads.items()
            }
        )
        active = list(active or trainable)
        for name in dict.fromkeys([*active, *trainable]):
            if name not in llm.attached_adapters:
                llm.attach_adapter(name)
        llm.set_adapters(active=active, trainable=list(trainable))
        self.optimizer_factory = optimizer or DEFAULT_OPTIMIZER
        self.scheduler_factory = scheduler or DEFAULT_SCHEDULER
        self.weight_decay = weight_decay
        self.strict_loading = False  # the frozen base is not in checkpoints

    def states(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The LLM's last-layer states ``(B, T, D)`` of ``texts`` and their mask: one pass
        serves every task's head."""
        rows = self.layout.batch([self.layout.plain_row(text) for text in texts], self.device)
        return self.llm.hidden_states(rows.embeds, rows.mask), rows.mask

    def forward(self, batch: Batch) -> torch.Tensor:
        """Mean BCE over rows (each row's BCE averaged over its task's labels)."""
        hidden, mask = self.states(batch["texts"])
        losses = []
        for task in dict.fromkeys(batch["tasks"]):
            rows = [i for i, t in enumerate(batch["tasks"]) if t == task]
            logits = self.heads[task](hidden[rows], mask[rows])
            losses.append(self.heads[task].loss(logits, [batch["targets"][i] for i in rows]))
        return torch.cat(losses).mean()

    @torch.no_grad()
    def classify(self, texts: list[str], task: str) -> torch.Tensor:
        """Sigmoid label probabilities ``(B, n_labels)`` (for AUROC)."""
        hidden, mask = self.states(texts)
        return self.heads[task](hidden, mask).float().sigmoid()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train/loss", loss, batch_size=len(batch["texts"]), prog_bar=True)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        groups = decay_groups(params, self.weight_decay)
        return optimization(
            groups, self.optimizer_factory, self.scheduler_factory, self.trainer.max_steps
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = {
            k: v
            for k, v in checkpoint["state_dict"].items()
            if is_adapter_weight(k) or k.startswith("heads.")
        }
