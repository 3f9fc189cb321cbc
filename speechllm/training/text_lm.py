"""TextLMModule: step one of two-step PEFT, a causal-LM objective on domain text only.

Gema et al. (2023) adapt the LLM to the clinical domain by training a LoRA adapter on
clinical notes, with no task and (for us) no audio; the adapter is then stacked under a
downstream one. Here only the named adapters train; the encoder and downsampler are not built.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.optim import AdamW

from speechllm.models.llm import LLM
from speechllm.models.speech_llm import IGNORE
from speechllm.training.module import OptimizerFactory, SchedulerFactory
from speechllm.training.schedule import warmup_decay


class TextLMModule(L.LightningModule):
    """Next-token loss on sentences, training exactly ``adapters`` of a decoder-only LLM.

    Checkpoints hold only the adapters' weights (the base is frozen and rebuilt from config).

    Args:
        llm: the frozen LLM; ``adapters`` are attached if not yet.
        adapters: adapters that run and train (e.g. ``[domain]``).
        optimizer: factory over parameters (Hydra ``_partial_``), AdamW by default.
        scheduler: factory ``(optimizer, total_steps=...)`` over ``trainer.max_steps``.
    """

    def __init__(
        self,
        llm: LLM,
        adapters: list[str],
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        if llm.is_encoder_decoder:
            raise ValueError("text-only domain adaptation needs a decoder-only (causal) LLM")
        if not adapters:
            raise ValueError("name at least one adapter to train")
        self.llm = llm
        self.adapters = list(adapters)
        self.optimizer_factory = optimizer or partial(AdamW, lr=1e-3)
        self.scheduler_factory = scheduler or partial(warmup_decay, warmup_steps=100)
        self.strict_loading = False  # the frozen base is not in checkpoints
        for name in self.adapters:
            if name not in llm.attached_adapters:
                llm.attach_adapter(name)
        llm.set_adapters(active=self.adapters, trainable=self.adapters)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Mean next-token loss over ``[bos] text [eos]`` rows (left-padded, like SpeechLLM)."""
        bos = self.llm.tokenizer.bos_token_id
        rows = [([bos] if bos is not None else []) + self.llm.tokenize(t) for t in texts]
        rows = [r + [self.llm.eos_token_id] for r in rows]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long, device=self.device)
        mask = torch.zeros_like(ids)
        for b, r in enumerate(rows):
            ids[b, width - len(r) :] = torch.tensor(r, device=self.device)
            mask[b, width - len(r) :] = 1
        logits = self.llm(self.llm.embed(ids), mask)[:, :-1]
        labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE)
        return nn.functional.cross_entropy(
            logits.float().transpose(1, 2), labels, ignore_index=IGNORE
        )

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
        optimizer = self.optimizer_factory(params)
        scheduler = self.scheduler_factory(optimizer, total_steps=self.trainer.max_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if "lora_" in k
        }
