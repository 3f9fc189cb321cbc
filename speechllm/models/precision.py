"""Frozen bases run in the dtype they were loaded in, whatever autocast is active around them.

transformers 5 loads a checkpoint in its stored dtype (Whisper-large-v3 fp16, Llama/Qwen bf16).
Under Lightning's ``bf16-mixed`` autocast, an fp16 model meets bf16 activations and fails in
its first LayerNorm ("mixed dtype"); a half-precision model gains nothing from autocast anyway.
So a half-precision base runs with autocast off, in its own dtype, and an fp32 base keeps
autocast (the mixed precision the trainer asked for). Inputs are cast at each base's boundary.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def own_precision(module: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Disable autocast around ``module`` when its weights are already half precision."""
    param = next(module.parameters())
    device = param.device.type
    if param.dtype == torch.float32 or not torch.is_autocast_enabled(device):
        return contextlib.nullcontext()
    return torch.autocast(device, enabled=False)
