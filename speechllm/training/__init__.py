"""Training: the thin LightningModule, the curriculum callback and LR schedules."""

from speechllm.training.curriculum import CurriculumCallback, Stage
from speechllm.training.module import SpeechLLMModule
from speechllm.training.schedule import warmup_decay

__all__ = ["CurriculumCallback", "SpeechLLMModule", "Stage", "warmup_decay"]
