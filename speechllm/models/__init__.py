"""Model pieces: frozen encoder + layer mix, downsampler, LLM with adapters, heads, SpeechLLM,
TextClassifier."""

from speechllm.models.ctc import CTCAligner
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.encoder import AudioEncoder, LayerWeights
from speechllm.models.head import ClassificationHead
from speechllm.models.llm import LLM
from speechllm.models.speech_llm import AudioEmbeddings, SpeechLLM, SpeechLLMOutput
from speechllm.models.text_classifier import TextClassifier

__all__ = [
    "LLM",
    "AudioEmbeddings",
    "AudioEncoder",
    "CTCAligner",
    "ClassificationHead",
    "ConvDownsampler",
    "LayerWeights",
    "SpeechLLM",
    "SpeechLLMOutput",
    "TextClassifier",
]
