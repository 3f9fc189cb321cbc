"""speechllm-serve MODEL: OpenAI-compatible chat completions and transcriptions for a speech
LLM, moderations (label probabilities) for a text classifier."""

from __future__ import annotations

import argparse
import os

from speechllm._warnings import quiet_known_warnings
from speechllm.serving.settings import ServeConfig

API_KEY_ENV = "SPEECHLLM_API_KEY"


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in ``--help``, except unset ones (``None``, off switches); the API
    key's default stays unset until after parsing, so ``--help`` never prints a secret."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``speechllm-serve``."""
    quiet_known_warnings()
    defaults = ServeConfig()
    parser = argparse.ArgumentParser(
        prog="speechllm-serve",
        formatter_class=_ShowDefaults,
        description="Serve a trained speech LLM at /v1/chat/completions (OpenAI's schema, audio "
        "as input_audio parts, streaming with stream: true), /v1/audio/transcriptions, "
        "/v1/models, /health, and a playground page at /. Concurrent requests are decoded in "
        "dynamic batches. A text classifier (speechllm-train-text text=classifier) is served at "
        "/v1/moderations instead: every task/label probability of each input text.",
    )
    parser.add_argument("model", help="export folder (speechllm-export), training .ckpt or hub id")
    parser.add_argument("--name", help="model id clients send (default: MODEL as given)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device (auto: cuda if available, else cpu)",
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=defaults.max_batch_size,
        help="most requests per batch; 1 turns batching off",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="how long a batch's first request waits for others",
    )
    parser.add_argument(
        "--max-audio-seconds",
        type=float,
        default=defaults.max_audio_seconds,
        help="longest recording accepted",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=defaults.max_body_bytes / 2**20,
        help="largest request body in MiB",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=defaults.max_tokens,
        help="largest max_tokens a request may ask for",
    )
    parser.add_argument(
        "--default-max-tokens",
        type=int,
        default=defaults.default_max_tokens,
        help="max_tokens when a request gives none",
    )
    parser.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=defaults.max_prompt_tokens,
        help="most text tokens in a prompt (template + instruction); longer: 400 "
        "context_length_exceeded",
    )
    parser.add_argument(
        "--api-key",
        help=f"require 'Authorization: Bearer KEY' on every route but /health and / (default: "
        f"${API_KEY_ENV}, else none; set one whenever --host is not loopback)",
    )
    parser.add_argument(
        "--docs", action="store_true", help="serve /docs, /redoc and /openapi.json (off by default)"
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="open connections plus running requests before new ones get 503",
    )
    parser.add_argument(
        "--keep-alive-s",
        type=int,
        default=defaults.keep_alive_s,
        help="how long an idle keep-alive connection stays open",
    )
    parser.add_argument(
        "--read-timeout-s",
        type=float,
        default=defaults.read_timeout_s,
        help="time a client has to send a whole request (headers and body); slower: closed",
    )
    parser.add_argument(
        "--max-header-kb",
        type=int,
        default=defaults.max_header_bytes // 1024,
        help="largest request line plus headers in KiB",
    )
    parser.add_argument(
        "--shutdown-timeout-s",
        type=float,
        default=defaults.shutdown_timeout_s,
        help="on SIGTERM, how long requests in flight may finish before they are abandoned",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    args = parser.parse_args(argv)
    config = ServeConfig(
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_audio_seconds=args.max_audio_seconds,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_tokens=args.max_tokens,
        default_max_tokens=args.default_max_tokens,
        max_prompt_tokens=args.max_prompt_tokens,
        api_key=(os.environ.get(API_KEY_ENV) if args.api_key is None else args.api_key) or None,
        docs=args.docs,
        max_connections=args.max_connections,
        keep_alive_s=args.keep_alive_s,
        read_timeout_s=args.read_timeout_s,
        max_header_bytes=args.max_header_kb * 1024,
        shutdown_timeout_s=args.shutdown_timeout_s,
    )
    # after parsing: --help needs neither torch nor the server
    import torch

    from speechllm.serving.server import load_app, serve

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    app = load_app(args.model, args.name, device, config)
    serve(app, args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
