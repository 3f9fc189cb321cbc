"""Hostile requests found by search: hypothesis drives the ASGI app (Starlette's TestClient,
lifespan and batcher running) with random bodies, routes and audio headers.

The property: every response is a 200 or a 4xx in OpenAI's error shape, within a time bound,
and the app keeps answering a good request correctly. The default profile is derandomized and
small (tests/conftest.py); HYPOTHESIS_PROFILE=long searches longer.

Sample rates run up to 2**31-1 Hz: the bounded decoder (``data/audio.py``) refuses a rate
outside 2-384 kHz from the header, before its resampler could spend tens of seconds.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from speechllm.inference import answer
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving import ServeConfig, create_app, transcriptions
from tests.serving.helpers import is_openai_error
from tests.serving.world import file_part, user

CONFIG = ServeConfig(
    max_batch_size=4,
    max_wait_ms=0,
    max_audio_seconds=2.0,
    max_body_bytes=64_000,
    max_tokens=4,
    default_max_tokens=2,
    max_prompt_tokens=48,
)
TIME_BOUND_S = 20.0
"""Per request; the slowest legitimate one decodes 2 s of audio and 4 tokens (~0.2 s)."""
RATES = st.sampled_from(
    [1, 7, 8000, 11025, 16000, 22050, 44100, 48000, 96000, 384000, 384001, 2**31 - 1]
) | (st.integers(1, 2**31 - 1))

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def wav_headers(draw: st.DrawFn) -> bytes:
    """A RIFF/WAVE file with every header field drawn: format tag, channels, rate, bits,
    declared sizes, and a short payload (possibly truncated or junk)."""
    tag = draw(st.sampled_from([1, 3, 6, 7, 0xFFFE, 0]) | st.integers(0, 0xFFFF))
    channels = draw(st.sampled_from([0, 1, 2, 8]) | st.integers(0, 0xFFFF))
    rate = draw(RATES | st.just(0))
    bits = draw(st.sampled_from([0, 8, 16, 24, 32, 64]) | st.integers(0, 0xFFFF))
    payload = draw(st.binary(max_size=1500))
    align = max(1, channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    declared = draw(st.sampled_from([len(payload), 0, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1))
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    body += struct.pack("<I", declared) + payload
    riff = draw(st.sampled_from([len(body), 0xFFFFFFFF]) | st.integers(0, 2**32 - 1))
    return (
        draw(st.binary(max_size=4)) * draw(st.booleans()) + b"RIFF" + struct.pack("<I", riff) + body
    )


@st.composite
def encoded_audio(draw: st.DrawFn, whole: bool = False) -> bytes:
    """Real files from soundfile at drawn rates, channels and lengths; unless ``whole``,
    possibly empty, a few samples long, or cut short."""
    fmt, subtype = draw(
        st.sampled_from(
            [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")]
        )
    )
    rate = draw(st.sampled_from([8000, 16000, 22050, 44100, 48000]))
    lengths = [4000, 16000] if whole else [0, 1, 2, 100, 399, 400, 4000, 16000]
    frames = draw(st.sampled_from(lengths))
    channels = draw(st.sampled_from([1, 2, 3]))
    wave = np.random.default_rng(frames).uniform(-1, 1, (frames, channels)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, subtype, format=fmt)
    data = buffer.getvalue()
    if whole or not draw(st.booleans()):
        return data
    return data[: draw(st.integers(0, len(data)))]


audio_bytes = encoded_audio(whole=True) | wav_headers() | encoded_audio() | st.binary(max_size=200)
VALID = {
    "max_tokens": st.integers(1, 4),
    "temperature": st.sampled_from([0.0, 1e-300, 5e-324, 1e-5, 0.7, 2.0]),
    "top_p": st.sampled_from([1.0, 0.5, 1e-300]),
    "stop": st.lists(st.text(min_size=1, max_size=4), max_size=4) | st.text(max_size=256),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
}
HOSTILE = {
    "model": st.sampled_from(["gpt-4o", ""]) | json_values,
    "messages": json_values,
    "max_tokens": st.integers(-2, 0) | st.integers(5, 2**64) | json_values,
    "temperature": st.floats(-1, 3) | json_values,
    "top_p": st.floats(-0.5, 1.5) | json_values,
    "stop": st.lists(st.text(max_size=300), min_size=5, max_size=8) | json_values,
    "stream": json_values,
    "stream_options": json_values,
    "n": st.integers(0, 3),
    "role": st.sampled_from(["system", "assistant", "tool"]) | st.text(max_size=5),
    "text": st.sampled_from(["", "   ", "x" * 5000, "word " * 40]),
    "format": st.text(max_size=4),
    "data": st.text(max_size=20),
    "audio": audio_bytes,
    "parts": st.sampled_from(["none", "two audio", "image"]),
}


@st.composite
def chat_bodies(draw: st.DrawFn) -> bytes:
    """A well-formed request, or one with a few fields made hostile."""
    hostile = draw(st.lists(st.sampled_from(sorted(HOSTILE)), max_size=3, unique=True))

    def pick(key: str, valid: st.SearchStrategy) -> object:
        return draw(HOSTILE[key] if key in hostile else valid)

    audio = pick("audio", encoded_audio(whole=True))
    data = pick("data", st.just(base64.b64encode(audio).decode()))
    fmt = pick("format", st.sampled_from(["wav", "flac", "mp3", "ogg"]))
    audio_part = {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}
    text = {"type": "text", "text": pick("text", st.text(min_size=1, max_size=30))}
    parts = {
        "none": [text],
        "two audio": [text, audio_part, audio_part],
        "image": [text, audio_part, {"type": "image_url", "image_url": {"url": "x"}}],
    }.get(pick("parts", st.just("")), [text, audio_part])
    role = pick("role", st.just("user"))
    body: dict[str, object] = {
        "model": pick("model", st.just("tiny")),
        "messages": pick("messages", st.just([{"role": role, "content": parts}])),
    }
    for key, valid in VALID.items():
        if key in hostile or draw(st.booleans()):
            body[key] = pick(key, valid)
    if "n" in hostile:
        body["n"] = pick("n", st.just(1))
    return json.dumps(body).encode()


raw_bodies = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())
CHAT = ("POST", "/v1/chat/completions")
routes = st.sampled_from(
    [CHAT] * 6
    + [
        ("POST", "/v1/audio/transcriptions"),
        ("GET", "/v1/chat/completions"),
        ("PUT", "/v1/models"),
        ("GET", "/v1/models/tiny"),
        ("POST", "/v1/../v1/chat/completions"),
        ("GET", "/%ff"),
    ]
)
content_types = st.sampled_from(
    ["application/json"] * 6 + ["text/plain", "multipart/form-data; boundary=x", ""]
)


@pytest.fixture(scope="module")
def client(reference: SpeechLLM) -> Iterator[TestClient]:
    with TestClient(create_app(reference, "tiny", CONFIG), raise_server_exceptions=False) as c:
        yield c


def _check(response, started: float) -> None:
    seconds = time.perf_counter() - started
    assert seconds < TIME_BOUND_S, seconds
    status = response.status_code
    if status == 501 and not transcriptions.MULTIPART:  # said so, in OpenAI's shape
        assert response.json()["error"]["code"] == "multipart_unavailable"
        return
    assert status == 200 or 400 <= status < 500, (status, response.text[:300])
    if status != 200:
        assert is_openai_error(response.json()), response.text[:300]
    elif "text/event-stream" in response.headers.get("content-type", ""):
        events = [e for e in response.text.split("\n\n") if e]
        assert events[-1] == "data: [DONE]" or '"error"' in events[-1], events[-1]
    else:
        assert response.json()["choices"][0]["message"]["content"] is not None


@given(route=routes, body=chat_bodies() | chat_bodies() | raw_bodies, content_type=content_types)
def test_any_request_is_answered_or_refused_in_openais_shape(
    client: TestClient, route: tuple[str, str], body: bytes, content_type: str
) -> None:
    method, path = route
    headers = {"Content-Type": content_type} if content_type else {}
    started = time.perf_counter()
    response = client.request(method, path, content=body, headers=headers)
    _check(response, started)


@given(audio=audio_bytes, name=st.sampled_from(["a.wav", "b.flac", "c.mp3", "d", "e.ogg"]))
def test_any_upload_is_transcribed_or_refused_in_openais_shape(
    client: TestClient, audio: bytes, name: str
) -> None:
    started = time.perf_counter()
    response = client.post(
        "/v1/audio/transcriptions", files={"file": (name, audio)}, data={"model": "tiny"}
    )
    if response.status_code == 501 and not transcriptions.MULTIPART:
        assert response.json()["error"]["code"] == "multipart_unavailable"
        return
    _check_transcription(response, started)


def _check_transcription(response, started: float) -> None:
    assert time.perf_counter() - started < TIME_BOUND_S
    status = response.status_code
    assert status == 200 or 400 <= status < 500, (status, response.text[:300])
    if status != 200:
        assert is_openai_error(response.json()), response.text[:300]
    else:
        assert isinstance(response.json()["text"], str)


def test_the_app_still_answers_correctly_after_the_fuzz(
    client: TestClient, recordings: list[Path], reference: SpeechLLM
) -> None:
    messages = user("Say it.", file_part(recordings[0]))
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages})
    assert response.status_code == 200
    expected = answer(reference, recordings[0], "Say it.", max_new_tokens=2)
    assert response.json()["choices"][0]["message"]["content"] == expected
    assert client.get("/health").json()["status"] == "ok"
