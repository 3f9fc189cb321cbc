"""speechllm: train speech LLMs (frozen encoder + conv downsampler + frozen LLM with LoRA)."""

from speechllm.models import LLM, AudioEncoder, ConvDownsampler, SpeechLLM
from speechllm.training import CurriculumCallback, SpeechLLMModule, Stage

__all__ = [
    "LLM",
    "AudioEncoder",
    "ConvDownsampler",
    "CurriculumCallback",
    "SpeechLLM",
    "SpeechLLMModule",
    "Stage",
]
