"""speechllm: train speech LLMs (frozen encoder + conv downsampler + frozen LLM with LoRA).

The public names load on first use, so ``import speechllm`` (and every ``--help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "LLM": "speechllm.models",
    "AudioEncoder": "speechllm.models",
    "ConvDownsampler": "speechllm.models",
    "SpeechLLM": "speechllm.models",
    "CurriculumCallback": "speechllm.training",
    "SpeechLLMModule": "speechllm.training",
    "Stage": "speechllm.training",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'speechllm' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
