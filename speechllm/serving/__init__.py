"""Serve a trained speech LLM behind OpenAI's chat completions and transcriptions APIs, with
dynamic batching.

Names are imported on first use, so ``speechllm-serve --help`` starts without loading torch.
"""

from speechllm._lazy import lazy_names

_PUBLIC = {
    "speechllm.serving.app": ("create_app",),
    "speechllm.serving.batcher": ("Answer", "Batcher"),
    "speechllm.serving.jobs": ("Intake", "Job", "ServingError", "prepare"),
    "speechllm.serving.server": ("load_app", "running", "serve", "uvicorn_config"),
    "speechllm.serving.settings": ("GenerationSettings", "ServeConfig"),
}
__all__, __getattr__ = lazy_names(__name__, _PUBLIC)
