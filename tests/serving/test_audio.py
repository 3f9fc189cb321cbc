"""Audio a client sends is answered or refused with a 4xx in OpenAI's shape, never a 500, and
the same whether the request is alone or batched. Before: a 1-sample clip alone was a 500 (the
encoder's convolution is longer than the clip) and could pass when a longer neighbour padded
it, so its fate depended on its batch."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from fastapi import FastAPI

from speechllm.data.errors import AudioError
from speechllm.inference import answer
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving import ServeConfig
from tests.serving.helpers import health, is_openai_error, post
from tests.serving.world import audio_part, file_part, user, wav_bytes

CONFIG = ServeConfig(
    max_batch_size=8, max_wait_ms=300, max_audio_seconds=2.0, max_tokens=16, default_max_tokens=8
)


def _body(part: dict) -> bytes:
    return json.dumps({"model": "tiny", "messages": user("Say it.", part)}).encode()


def _shortest(model: SpeechLLM) -> int:
    """Fewest samples the encoder makes one frame of (its convolutions' arithmetic)."""
    lengths = model.encoder.output_lengths(torch.arange(1, 4000))
    return int((lengths >= 1).nonzero()[0]) + 1


def test_too_short_audio_is_a_400_alone_and_in_a_batch(
    server: tuple[str, FastAPI], recordings: list[Path], reference: SpeechLLM
) -> None:
    url = server[0]
    shortest = _shortest(reference)
    lengths = (1, 2, shortest - 1)
    shorts = [audio_part(wav_bytes(torch.full((n,), 0.1)), "wav") for n in lengths]
    for part in shorts:  # alone
        status, data = post(url, _body(part))
        assert status == 400 and is_openai_error(data), data
        assert data["error"]["code"] == "audio_too_short"
    # batched with good requests: the same 400 each, and the good ones get their own answers
    goods = [file_part(path) for path in recordings[:3]]
    before = health(url)
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda part: post(url, _body(part)), [*shorts, *goods]))
    after = health(url)
    for status, data in got[:3]:
        assert status == 400 and data["error"]["code"] == "audio_too_short", data
    for (status, data), path in zip(got[3:], recordings, strict=False):
        assert status == 200
        expected = answer(reference, path, "Say it.", max_new_tokens=8)
        assert data["choices"][0]["message"]["content"] == expected
    assert after["items"] - before["items"] == 3
    # the shortest clip that makes one frame is answered
    part = audio_part(wav_bytes(torch.full((shortest,), 0.1)), "wav")
    assert post(url, _body(part))[0] == 200


def test_audio_problems_are_4xx_never_500(
    server: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server[0]
    buffer = io.BytesIO()
    sf.write(buffer, np.array([0.1, np.nan] * 400, dtype=np.float32), 16000, "FLOAT", format="WAV")
    nan = buffer.getvalue()
    cases = {
        "undecodable": (audio_part(b"RIFF\x00\x00\x00\x00WAVEjunk", "wav"), "unreadable"),
        "NaN samples": (audio_part(nan, "wav"), "nan_audio"),
        "too long": (audio_part(wav_bytes(torch.zeros(40_000)), "wav"), "audio_too_long"),
        "8 channels at 8 kHz, too short": (
            audio_part(wav_bytes(torch.zeros(100, 8), rate=8000), "wav"),
            "audio_too_short",
        ),
        "flac header only": (audio_part(b"fLaC\x00\x00\x00\x22" + bytes(34), "flac"), None),
    }
    for name, (part, code) in cases.items():
        status, data = post(url, _body(part))
        assert 400 <= status < 500 and is_openai_error(data), (name, status, data)
        assert code is None or data["error"]["code"] == code, (name, data)
    # the project's audio error, whatever its reason (a bounded decoder refusing an odd rate
    # or a long file before decoding), and any other decoder failure, are 400s
    import speechllm.serving.jobs as jobs

    for error in (AudioError("rate 1 Hz refused", reason="odd_rate"), RuntimeError("libsndfile")):

        def refuse(*_, error=error, **__):
            raise error

        monkeypatch.setattr(jobs, "decode_audio", refuse)
        status, data = post(url, _body(audio_part(b"anything", "wav")))
        assert status == 400 and is_openai_error(data), data
        assert data["error"]["code"] in ("odd_rate", "unreadable")
        assert data["error"]["param"] == "messages[0].content[1]"
