"""Training: the thin LightningModules, the curriculum and adapter callbacks, LR schedules.

Names are imported on first use, so ``speechllm-train`` checks its config before torch loads.
"""

from __future__ import annotations

from speechllm._lazy import lazy_names

_PUBLIC = {
    "speechllm.training.adapter_saver": ("SaveAdapters",),
    "speechllm.training.curriculum": ("CurriculumCallback", "Stage"),
    "speechllm.training.module": ("SpeechLLMModule",),
    "speechllm.training.schedule": ("warmup_decay",),
    "speechllm.training.stage_summary": ("StageSummary",),
    "speechllm.training.text_classifier": ("TextClassifierModule",),
    "speechllm.training.text_lm": ("TextLMModule",),
}
__all__, __getattr__ = lazy_names(__name__, _PUBLIC)
