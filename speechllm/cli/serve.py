"""speechllm-serve MODEL: an OpenAI-compatible chat completions endpoint for a speech LLM."""

from __future__ import annotations

import argparse

import torch

from speechllm.serving import ServeConfig, load_app, serve


def main(argv: list[str] | None = None) -> None:
    defaults = ServeConfig()
    parser = argparse.ArgumentParser(
        prog="speechllm-serve",
        description="Serve a trained speech LLM at /v1/chat/completions (OpenAI's schema, audio "
        "as input_audio parts, streaming with stream: true), /v1/models, /health, and a "
        "playground page at /. Concurrent requests are decoded in dynamic batches.",
    )
    parser.add_argument("model", help="export folder (speechllm-export), training .ckpt or hub id")
    parser.add_argument("--name", help="model id clients send (default: MODEL as given)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda if available)",
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
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    args = parser.parse_args(argv)
    config = ServeConfig(
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_audio_seconds=args.max_audio_seconds,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_tokens=args.max_tokens,
        default_max_tokens=args.default_max_tokens,
    )
    serve(
        load_app(args.model, args.name, args.device, config), args.host, args.port, args.log_level
    )


if __name__ == "__main__":
    main()
