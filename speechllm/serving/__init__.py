"""Serve a trained speech LLM behind OpenAI's chat completions and transcriptions APIs, with
dynamic batching."""

from speechllm.serving.app import create_app
from speechllm.serving.batcher import Answer, Batcher
from speechllm.serving.jobs import Intake, Job, ServingError, prepare
from speechllm.serving.server import load_app, running, serve, uvicorn_config
from speechllm.serving.settings import GenerationSettings, ServeConfig

__all__ = [
    "Answer",
    "Batcher",
    "GenerationSettings",
    "Intake",
    "Job",
    "ServeConfig",
    "ServingError",
    "create_app",
    "load_app",
    "prepare",
    "running",
    "serve",
    "uvicorn_config",
]
