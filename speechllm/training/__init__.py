"""Training: the thin LightningModules, the curriculum and adapter callbacks, LR schedules."""

from speechllm.training.adapter_saver import SaveAdapters
from speechllm.training.curriculum import CurriculumCallback, Stage
from speechllm.training.module import SpeechLLMModule
from speechllm.training.schedule import warmup_decay
from speechllm.training.stage_summary import StageSummary
from speechllm.training.text_classifier import TextClassifierModule
from speechllm.training.text_lm import TextLMModule

__all__ = [
    "CurriculumCallback",
    "SaveAdapters",
    "SpeechLLMModule",
    "Stage",
    "StageSummary",
    "TextClassifierModule",
    "TextLMModule",
    "warmup_decay",
]
