"""Training: the thin LightningModules, the curriculum and adapter callbacks, LR schedules.

Names are imported on first use, so ``speechllm-train`` checks its config before torch loads.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "speechllm.training.adapter_saver": ("SaveAdapters",),
    "speechllm.training.curriculum": ("CurriculumCallback", "Stage"),
    "speechllm.training.module": ("SpeechLLMModule",),
    "speechllm.training.schedule": ("warmup_decay",),
    "speechllm.training.stage_summary": ("StageSummary",),
    "speechllm.training.text_classifier": ("TextClassifierModule",),
    "speechllm.training.text_lm": ("TextLMModule",),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_MODULE_OF[name]), name)
