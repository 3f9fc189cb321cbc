"""TextClassifierModule: two-step PEFT's step two on text alone, the thin LightningModule around
a :class:`~speechllm.models.TextClassifier`.

Gema et al. (2023) stack a downstream LoRA on a clinical-domain LoRA and classify notes with a
head on the LLM's pooled states. Each row is a text, its task and its target labels; the heads
train with BCE (multi-label and one-of-many tasks alike; AUROC per label), and so do exactly
the ``trainable`` adapters among those the model runs. The three arms of the paper's Table 3
are three settings of ``model.adapters`` (what runs) and ``trainable`` (what learns):

    arm          model.adapters    trainable
    none         [task]            [task]
    frozen       [domain, task]    [task]
    trainable    [domain, task]    [domain, task]

Checkpoints hold the heads and adapters and the model's recipe, as ``SpeechLLMModule``'s do,
so ``speechllm-export`` and ``speechllm-eval`` rebuild the classifier without the run config.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from speechllm.models.llm import LLM
from speechllm.models.pretrained import ModelRecipe
from speechllm.models.text_classifier import TextClassifier
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
    """Steps, logging and optimizers for a text classifier; the model lives in ``model``.

    Args:
        model: the classifier, its adapters declared and running (a step-one adapter loaded
            through the LLM's ``adapter_paths`` when stacking).
        trainable: adapters that train with the heads (e.g. ``[task]``, or ``[domain, task]``);
            each must run (be in ``model.adapters``).
        optimizer: factory over parameter groups (Hydra ``_partial_``), AdamW by default.
        scheduler: factory ``(optimizer, total_steps=...)`` over ``trainer.max_steps``.
        weight_decay: on matrices only.
        recipe: how ``model`` was built (its config node and seed), written into checkpoints.
    """

    def __init__(
        self,
        model: TextClassifier,
        trainable: list[str],
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        weight_decay: float = 0.01,
        recipe: ModelRecipe | None = None,
    ) -> None:
        super().__init__()
        idle = sorted(set(trainable) - set(model.adapters))
        if idle:
            raise ValueError(
                f"trainable adapters {idle} do not run (model.adapters: {model.adapters})"
            )
        self.model = model
        self.trainable = list(trainable)
        self.optimizer_factory = optimizer or DEFAULT_OPTIMIZER
        self.scheduler_factory = scheduler or DEFAULT_SCHEDULER
        self.weight_decay = weight_decay
        self.recipe = recipe
        self.strict_loading = False  # the frozen base is not in checkpoints
        model.set_trainable(self.trainable)

    @property
    def llm(self) -> LLM:
        """The model's LLM (``SaveAdapters`` finds it here)."""
        return self.model.llm

    def forward(self, batch: Batch) -> torch.Tensor:
        """Mean BCE over rows (each row's BCE averaged over its task's labels)."""
        return self.model.loss(batch["texts"], batch["tasks"], batch["targets"])

    def classify(self, texts: list[str], task: str) -> torch.Tensor:
        """Sigmoid label probabilities ``(B, n_labels)`` (for AUROC)."""
        return self.model.classify(texts, task)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train/loss", loss, batch_size=len(batch["texts"]), prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("val/loss", loss, batch_size=len(batch["texts"]), sync_dist=True)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        groups = decay_groups(params, self.weight_decay)
        return optimization(
            groups, self.optimizer_factory, self.scheduler_factory, self.trainer.max_steps
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = {f"model.{k}" for k in self.model.trainable_state_dict()}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["speechllm"] = {
            "adapters": self.model.llm.attached_adapters,
            "config": self.recipe.to_dict() if self.recipe else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        extra = checkpoint.get("speechllm", {})
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
        self.model.load_trainable_state_dict(state, extra.get("adapters", []))
        self.model.set_trainable(self.trainable)
