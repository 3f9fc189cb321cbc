"""Optimizer and schedule building shared by the LightningModules (speech and text-only)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LRScheduler

from speechllm.training.schedule import warmup_decay

OptimizerFactory = Callable[[Iterable[Any]], Optimizer]
"""Builds the optimizer over parameters or parameter groups (Hydra ``_partial_``)."""
SchedulerFactory = Callable[..., LRScheduler]
"""Builds the schedule from ``(optimizer, total_steps=...)`` (Hydra ``_partial_``)."""

DEFAULT_OPTIMIZER: OptimizerFactory = partial(AdamW, lr=1e-3)
DEFAULT_SCHEDULER: SchedulerFactory = partial(warmup_decay, warmup_steps=100)


def decay_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups with weight decay on matrices only: decay would pull norms' gains,
    biases and the layer mix's logits toward zero, which is no simpler model, just a worse one."""
    params = list(params)
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def optimization(
    params: Iterable[Any],
    optimizer: OptimizerFactory,
    scheduler: SchedulerFactory,
    total_steps: int,
) -> dict[str, Any]:
    """The optimizer over ``params`` (parameters or groups) and its schedule over
    ``total_steps``, stepped every optimizer step, as ``configure_optimizers`` returns them."""
    built = optimizer(params)
    schedule = scheduler(built, total_steps=total_steps)
    return {"optimizer": built, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
