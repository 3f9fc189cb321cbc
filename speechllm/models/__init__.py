"""Model pieces: frozen encoder + layer mix, conv downsampler, LLM with adapters, SpeechLLM."""

from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.encoder import AudioEncoder, LayerWeights
from speechllm.models.llm import LLM
from speechllm.models.speech_llm import SpeechLLM, SpeechLLMOutput

__all__ = ["LLM", "AudioEncoder", "ConvDownsampler", "LayerWeights", "SpeechLLM", "SpeechLLMOutput"]
