"""speechllm-serve end to end: the real server on a loopback port, the official ``openai``
client, every bad request, and each answer checked against ``speechllm.inference`` alone."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest
import torch
from fastapi import FastAPI

from speechllm.cli.serve import main
from speechllm.inference import answer, featurize
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving import GenerationSettings, ServeConfig, running, server
from speechllm.serving.streaming import TextSink
from tests.serving.helpers import health, is_openai_error, post
from tests.serving.world import audio_part, file_part, user, wav_bytes

TOKENS = 12
INSTRUCTIONS = ["Transcribe the audio.", "What is the intent of this request?", "Say it."]
CONFIG = ServeConfig(
    max_batch_size=8,
    max_wait_ms=300,  # long, so the concurrent requests below surely share batches
    max_audio_seconds=2.0,
    max_body_bytes=256_000,
    max_tokens=64,
    default_max_tokens=16,
)


@pytest.fixture
def client(server: tuple[str, FastAPI]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0, timeout=120)


def test_answers_equal_inference_alone_streamed_or_not(
    client: openai.OpenAI, recordings: list[Path], reference: SpeechLLM
) -> None:
    answers = []
    for path, instruction in zip(recordings[:3], INSTRUCTIONS, strict=True):  # wav, flac, mp3
        expected = answer(reference, path, instruction, max_new_tokens=TOKENS)
        encoded = reference.encode_audio(*featurize(reference, path))
        tokens = reference.generate_ids(encoded, [instruction], TOKENS)[0]
        messages = user(instruction, file_part(path))
        reply = client.chat.completions.create(model="tiny", messages=messages, max_tokens=TOKENS)
        assert reply.choices[0].message.content == expected
        assert reply.choices[0].finish_reason == ("length" if len(tokens) == TOKENS else "stop")
        # usage: the LLM read the prompt's text tokens and the audio embeddings
        prompt = reference.prompt_length(instruction) + int(encoded.lengths[0])
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (prompt, len(tokens))
        assert reply.usage.total_tokens == prompt + len(tokens)
        chunks = list(
            client.chat.completions.create(
                model="tiny",
                messages=messages,
                max_tokens=TOKENS,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert chunks[0].choices[0].delta.role == "assistant"
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
        assert chunks[-2].choices[0].finish_reason == reply.choices[0].finish_reason
        assert chunks[-1].choices == [] and chunks[-1].usage == reply.usage  # OpenAI's last chunk
        assert all(c.usage is None for c in chunks[:-1])
        assert len({c.id for c in chunks}) == 1
        answers.append(expected)
    assert len(set(answers)) == 3  # the audio and instruction matter: answers differ


def test_models_health_and_sampling(
    client: openai.OpenAI, server: tuple[str, FastAPI], recordings: list[Path]
) -> None:
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert health(server[0])["status"] == "ok"
    sampled = client.chat.completions.create(
        model="tiny",
        messages=user("Say it.", file_part(recordings[0])),
        temperature=0.8,
        top_p=0.9,
        max_tokens=4,
    )
    assert sampled.choices[0].finish_reason in ("stop", "length")
    assert isinstance(sampled.choices[0].message.content, str)


def _stop_after(text: str) -> str:
    """A stop string that occurs in ``text`` after its start."""
    return next(c for c in text[1:] if c.isascii() and c.isalnum())


def test_concurrent_requests_share_batches_and_each_equals_its_answer_alone(
    server: tuple[str, FastAPI], recordings: list[Path], reference: SpeechLLM
) -> None:
    url = server[0]
    full = answer(reference, recordings[5], INSTRUCTIONS[0], max_new_tokens=TOKENS)
    stop = _stop_after(full)
    cases = [  # (recording, instruction, max_tokens, stop, stream)
        (0, INSTRUCTIONS[0], TOKENS, None, False),
        (1, INSTRUCTIONS[1], TOKENS, None, True),
        (2, INSTRUCTIONS[2], TOKENS, None, False),
        (3, INSTRUCTIONS[0], 5, None, False),
        (4, INSTRUCTIONS[1], 5, None, True),
        (5, INSTRUCTIONS[0], TOKENS, stop, True),
    ]
    expected = [
        answer(reference, recordings[i], instruction, max_new_tokens=n)
        for i, instruction, n, _, _ in cases
    ]
    expected[-1] = full[: full.index(stop)]

    def ask(case: tuple) -> str:
        i, instruction, n, stop_at, stream = case
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        kwargs = {"model": "tiny", "messages": user(instruction, file_part(recordings[i]))}
        kwargs.update(max_tokens=n, stop=stop_at)
        if not stream:
            return client.chat.completions.create(**kwargs).choices[0].message.content
        chunks = client.chat.completions.create(**kwargs, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks)

    before = health(url)
    with ThreadPoolExecutor(len(cases)) as pool:
        got = list(pool.map(ask, cases))
    after = health(url)
    assert got == expected
    items, batches = after["items"] - before["items"], after["batches"] - before["batches"]
    assert items == len(cases)
    assert batches < items  # three settings groups, six requests: some were decoded together


def test_a_request_failing_inside_a_batch_fails_alone(
    server: tuple[str, FastAPI],
    recordings: list[Path],
    reference: SpeechLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, app = server
    model = app.state.batcher.model
    calls: list[list[str]] = []
    generate_ids = model.generate_ids

    def fragile(audio, instructions, *args, **kwargs):
        calls.append(list(instructions))
        if "explode" in instructions:
            raise RuntimeError("boom")
        return generate_ids(audio, instructions, *args, **kwargs)

    monkeypatch.setattr(model, "generate_ids", fragile)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
    cases = [(0, INSTRUCTIONS[0], False), (1, "explode", False), (2, "explode", True)]
    cases.append((3, INSTRUCTIONS[1], True))

    def ask(case: tuple) -> str | Exception:
        i, instruction, stream = case
        messages = user(instruction, file_part(recordings[i]))
        try:
            reply = client.chat.completions.create(
                model="tiny", messages=messages, max_tokens=TOKENS, stream=stream
            )
            if not stream:
                return reply.choices[0].message.content
            return "".join(c.choices[0].delta.content or "" for c in reply)
        except openai.APIError as error:
            return error

    with ThreadPoolExecutor(len(cases)) as pool:
        got = list(pool.map(ask, cases))
    # a failing request shared a batch with good ones (which raised), and was rerun alone
    assert any("explode" in batch and set(batch) - {"explode"} for batch in calls)
    for (i, instruction, _), result in zip(cases, got, strict=True):
        if instruction == "explode":
            assert isinstance(result, openai.APIError) and "boom" in result.message
        else:
            assert result == answer(reference, recordings[i], instruction, max_new_tokens=TOKENS)
    assert isinstance(got[1], openai.InternalServerError)
    assert health(url)["status"] == "ok"


def _chat(*parts: dict, **fields: Any) -> bytes:
    return json.dumps({"model": "tiny", "messages": user("Say it.", *parts), **fields}).encode()


def test_bad_requests_get_a_4xx_with_a_message_and_the_server_stays_up(
    server: tuple[str, FastAPI], recordings: list[Path], reference: SpeechLLM
) -> None:
    url = server[0]
    good = file_part(recordings[0])
    long_audio = audio_part(wav_bytes(torch.zeros(int(2.5 * 16000))), "wav")
    not_base64 = {"type": "input_audio", "input_audio": {"data": "@@@@", "format": "wav"}}
    image = {"type": "image_url", "image_url": {"url": "http://example.com/x.png"}}
    bad = {
        "undecodable audio": (_chat(audio_part(b"not audio at all", "wav")), 400, "unreadable"),
        "empty audio": (_chat(audio_part(b"", "wav")), 400, "empty"),
        "audio without samples": (
            _chat(audio_part(wav_bytes(torch.zeros(0)), "wav")),
            400,
            "no samples",
        ),
        "audio not base64": (_chat(not_base64), 400, "not base64"),
        "audio too long": (_chat(long_audio), 400, "2.5 s long"),
        "too many audio parts": (_chat(good, good), 400, "at most 1"),
        "no audio part": (_chat(), 400, "no input_audio"),
        "unknown model": (_chat(good).replace(b'"tiny"', b'"gpt-4o"'), 404, "not found"),
        "malformed JSON": (b'{"model": "tiny", "messages": [', 400, "malformed JSON"),
        "body over the limit": (_chat(good, pad="x" * 300_000), 413, "limit of 256000"),
        "no messages": (b'{"model": "tiny"}', 400, "messages"),
        "unsupported part": (_chat(image), 400, "image_url"),
        "max_tokens over the limit": (_chat(good, max_tokens=65), 400, "max_tokens"),
        "two answers": (_chat(good, n=2), 400, "n"),
        "multi-turn": (
            json.dumps(
                {
                    "model": "tiny",
                    "messages": [
                        *user("Say it.", good),
                        {"role": "assistant", "content": "ok"},
                        *user("Again.", good),
                    ],
                }
            ).encode(),
            400,
            "multi-turn",
        ),
    }
    for name, (body, status, message) in bad.items():
        got_status, data = post(url, body)
        assert (got_status, name) == (status, name), data
        assert message in data["error"]["message"], (name, data)
        assert is_openai_error(data), (name, data)
    # a body sent in chunks, with no Content-Length to refuse it by, is counted as it arrives
    chunks = iter([_chat(good, pad="x" * 300_000)])
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request(
        "POST",
        "/v1/chat/completions",
        chunks,
        {"Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 413 and b"limit" in response.read()
    # the official client sees the same errors as its own exception types
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.chat.completions.create(model="gpt-4o", messages=user("Say it.", good))
    with pytest.raises(openai.BadRequestError, match="unreadable"):
        client.chat.completions.create(
            model="tiny", messages=user("Say it.", audio_part(b"junk", "mp3"))
        )
    # and the server still answers, correctly
    reply = client.chat.completions.create(
        model="tiny", messages=user("Say it.", good), max_tokens=TOKENS
    )
    expected = answer(reference, recordings[0], "Say it.", max_new_tokens=TOKENS)
    assert reply.choices[0].message.content == expected


def test_stop_strings_are_cut_and_held_back_while_streaming() -> None:
    settings = GenerationSettings(max_tokens=8, stop=("ab", "z"))
    assert settings.cut("xxabyz") == ("xx", True)
    assert settings.cut("xxy") == ("xxy", False)
    sent: list[str] = []
    sink = TextSink(sent.append, settings)
    sink.offer("xxa")  # "a" may start "ab": held back
    assert sent == ["xx"]
    sink.offer("xxab yy")
    sink.offer("xx", final=True)
    assert "".join(sent) == "xx"


def test_serve_config_refuses_inconsistent_limits() -> None:
    with pytest.raises(ValueError, match="default_max_tokens"):
        ServeConfig(max_tokens=8, default_max_tokens=16)
    with pytest.raises(ValueError, match="max_batch_size"):
        ServeConfig(max_batch_size=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_help_and_the_app_it_builds(
    export: Path, recordings: list[Path], reference: SpeechLLM, monkeypatch, capsys
) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main(["--help"])
    assert exit_code.value.code == 0
    usage = capsys.readouterr().out
    assert "/v1/chat/completions" in usage and "--max-batch-size" in usage
    served: list[tuple] = []
    monkeypatch.setattr(server, "serve", lambda *args: served.append(args))
    main([str(export), "--name", "tiny-cli", "--port", "9", "--max-batch-size", "1"])
    app, host, port, _ = served[0]
    assert (host, port, app.state.batcher.max_batch_size) == ("127.0.0.1", 9, 1)
    with running(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model="tiny-cli", messages=user("Say it.", file_part(recordings[1])), max_tokens=4
        )
    assert reply.choices[0].message.content == answer(
        reference, recordings[1], "Say it.", max_new_tokens=4
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # two fresh interpreters importing torch: a minute on a busy 2-core CI box
def test_python_m_speechllm_cli_serve_serves_an_export(export: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "speechllm.cli.serve", str(export), "--port", str(port)]
    process = subprocess.Popen([*command, "--name", "tiny-cli", "--device", "cpu"])
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        deadline = time.monotonic() + 120
        while True:
            try:
                assert [m.id for m in client.models.list().data] == ["tiny-cli"]
                break
            except openai.APIConnectionError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(30)
