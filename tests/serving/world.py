"""Requests for the serving tests: recordings in each format a client sends, as OpenAI parts."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import soundfile as sf
import torch

from speechllm.testing import tiny_examples


def write_recordings(out: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` tiny tone recordings (0.4-1 s, 16 kHz), cycling through WAV, FLAC and MP3."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, example in enumerate(tiny_examples(n, seed=seed)):
        path = out / f"rec{i}.{('wav', 'flac', 'mp3')[i % 3]}"
        sf.write(path, example["audio"].clamp(-1, 1).numpy(), 16000)
        paths.append(path)
    return paths


def audio_part(data: bytes, fmt: str) -> dict:
    """An OpenAI ``input_audio`` content part."""
    encoded = base64.b64encode(data).decode()
    return {"type": "input_audio", "input_audio": {"data": encoded, "format": fmt}}


def file_part(path: Path) -> dict:
    return audio_part(path.read_bytes(), path.suffix[1:])


def wav_bytes(waveform: torch.Tensor, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, waveform.numpy(), rate, format="WAV")
    return buffer.getvalue()


def user(instruction: str, *parts: dict) -> list[dict]:
    """A one-turn conversation: the instruction, then the audio parts."""
    return [{"role": "user", "content": [{"type": "text", "text": instruction}, *parts]}]
