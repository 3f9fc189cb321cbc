"""Model pieces: frozen encoder + layer mix, downsampler, LLM with adapters, heads, SpeechLLM,
TextClassifier.

Names are imported on first use, so ``speechllm-fetch`` and other light commands start without
loading torch or transformers.
"""

from speechllm._lazy import lazy_names

_PUBLIC = {
    "speechllm.models.ctc": ("CTCAligner",),
    "speechllm.models.downsampler": ("ConvDownsampler",),
    "speechllm.models.encoder": ("AudioEncoder", "LayerWeights"),
    "speechllm.models.head": ("ClassificationHead",),
    "speechllm.models.summary_align": ("SummaryAligner",),
    "speechllm.models.llm": ("LLM",),
    "speechllm.models.speech_llm": ("AudioEmbeddings", "SpeechLLM", "SpeechLLMOutput"),
    "speechllm.models.text_classifier": ("TextClassifier",),
}
__all__, __getattr__ = lazy_names(__name__, _PUBLIC)
