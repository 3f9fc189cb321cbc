"""speechllm: train speech LLMs (frozen encoder + conv downsampler + frozen LLM with LoRA).

The public names load on first use, so ``import speechllm`` (and every ``--help``) stays fast.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

# OpenMP's idle threads spin by default: on a machine with other work running, a training step
# with two threads ran far slower. Passive waiting costs little on an idle machine.
# The runtime reads this once, when torch loads it, so it is set before any submodule imports
# torch (every entry point and worker process imports this package first); a user's own wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
