"""TextLMModule: step one of two-step PEFT, a causal-LM objective on domain text only.

Gema et al. (2023) adapt the LLM to the clinical domain by training a LoRA adapter on
clinical notes, with no task and (for us) no audio; the adapter is then stacked under a
downstream one. Here only the named adapters train; the encoder and downsampler are not built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from speechllm.models.layout import RowLayout, next_token_loss, scored_width, shift, token_losses
from speechllm.models.llm import LLM, is_adapter_weight
from speechllm.training.optim import (
    DEFAULT_OPTIMIZER,
    DEFAULT_SCHEDULER,
    OptimizerFactory,
    SchedulerFactory,
    optimization,
)


class TextLMModule(L.LightningModule):
    """Next-token loss on sentences, training exactly ``adapters`` of a decoder-only LLM.

    Checkpoints hold only the adapters' weights (the base is frozen and rebuilt from config).

    Args:
        llm: the frozen LLM; ``adapters`` are attached if not yet.
        adapters: adapters that run and train (e.g. ``[domain]``).
        optimizer: factory over parameters (Hydra ``_partial_``), AdamW by default.
        scheduler: factory ``(optimizer, total_steps=...)`` over ``trainer.max_steps``.
        max_tokens: each text's first tokens trained on (a whole note can be thousands);
            ``None``: all of it.
    """

    def __init__(
        self,
        llm: LLM,
        adapters: list[str],
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        max_tokens: int | None = 510,
    ) -> None:
        super().__init__()
        if llm.is_encoder_decoder:
            raise ValueError("text-only domain adaptation needs a decoder-only (causal) LLM")
        if not adapters:
            raise ValueError("name at least one adapter to train")
        self.llm = llm
        self.adapters = list(adapters)
        self.layout = RowLayout(llm)
        self.max_tokens = max_tokens
        self.optimizer_factory = optimizer or DEFAULT_OPTIMIZER
        self.scheduler_factory = scheduler or DEFAULT_SCHEDULER
        self.strict_loading = False  # the frozen base is not in checkpoints
        for name in self.adapters:
            if name not in llm.attached_adapters:
                llm.attach_adapter(name)
        llm.set_adapters(active=self.adapters, trainable=self.adapters)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Mean next-token loss over ``[bos] text [eos]`` rows (left-padded, like SpeechLLM)."""
        rows = [self.layout.plain_row("", text, self.max_tokens) for text in texts]
        return next_token_loss(self.llm, self.layout.batch(rows, self.device))

    def training_step(self, batch: list[str], batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train/loss", loss, batch_size=len(batch), prog_bar=True)
        return loss

    def validation_step(self, batch: list[str], batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("val/loss", loss, batch_size=len(batch), sync_dist=True)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for name in self.adapters for p in self.llm.adapter_parameters(name)]
        return optimization(
            params, self.optimizer_factory, self.scheduler_factory, self.trainer.max_steps
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if is_adapter_weight(k)
        }


@torch.no_grad()
def perplexity(
    llm: LLM, texts: Sequence[str], batch_size: int = 16, max_tokens: int | None = 510
) -> float:
    """Token-weighted perplexity of ``texts`` under ``llm`` as it runs now (its active
    adapters; inside ``llm.adapters_off()``, the base alone), each read as ``[bos] text [eos]``
    the way :class:`TextLMModule` trains on it (in eval mode: no dropout).
    """
    if not texts:
        raise ValueError("no texts to score")
    layout, total, tokens = RowLayout(llm), 0.0, 0
    device = llm.base_model.get_input_embeddings().weight.device
    training = llm.training
    llm.eval()
    try:
        for start in range(0, len(texts), batch_size):
            batch = [layout.plain_row("", t, max_tokens) for t in texts[start : start + batch_size]]
            rows = layout.batch(batch, device)
            keep = scored_width(rows)
            logits, labels = shift(llm(rows.embeds, rows.mask, logits_to_keep=keep), rows, keep)
            loss, counted = token_losses(logits, labels)
            total, tokens = total + float(loss.sum()), tokens + int(counted.sum())
    finally:
        llm.train(training)
    return math.exp(total / max(tokens, 1))
