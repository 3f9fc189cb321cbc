"""answer() and stream_answer() on one recording, and speechllm-infer around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from speechllm.cli.infer import main
from speechllm.data.audio import load_audio
from speechllm.data.errors import AudioError
from speechllm.data.features import Featurizer, collate_features
from speechllm.inference import answer, stream_answer
from speechllm.models import SpeechLLM
from tests.tiny_run import TinyRun

INSTRUCTIONS = ["Transcribe the audio.", "What is the intent of this request?", "Say it."]
TOKENS = 10


@pytest.fixture(scope="module")
def model(tiny_run: TinyRun) -> SpeechLLM:
    return SpeechLLM.from_pretrained(tiny_run.export)


@pytest.fixture(scope="module")
def wavs(tiny_run: TinyRun) -> list[str]:
    lines = [json.loads(line) for line in tiny_run.test.read_text().splitlines()[:3]]
    return [str(tiny_run.test.parent / line["audio"]) for line in lines]


def test_answer_on_a_path_equals_batched_generate(model: SpeechLLM, wavs: list[str]) -> None:
    featurizer = Featurizer(model.encoder.feature_extractor)
    audio, lengths = collate_features([featurizer(load_audio(w, 16000)) for w in wavs])
    batched = model.generate(audio, lengths, INSTRUCTIONS, max_new_tokens=TOKENS)
    alone = [
        answer(model, w, i, max_new_tokens=TOKENS) for w, i in zip(wavs, INSTRUCTIONS, strict=True)
    ]
    assert alone == batched  # one recording (inference.answer) == its row of the batch
    assert all(alone)


def test_answer_on_a_tensor_at_another_rate_and_in_stereo(
    model: SpeechLLM, wavs: list[str], tmp_path: Path
) -> None:
    native = load_audio(wavs[0], None)  # the files are 16 kHz
    assert answer(model, native, INSTRUCTIONS[0]) == answer(model, wavs[0], INSTRUCTIONS[0])
    stereo = torch.stack([native, native])
    assert answer(model, stereo, INSTRUCTIONS[0]) == answer(model, native, INSTRUCTIONS[0])
    low = tmp_path / "8k.wav"
    sf.write(low, load_audio(wavs[0], 8000).numpy(), 8000)
    from_file = answer(model, low, INSTRUCTIONS[0], max_new_tokens=TOKENS)
    waveform = load_audio(str(low), None)
    resampled = answer(model, waveform, INSTRUCTIONS[0], 8000, max_new_tokens=TOKENS)
    assert resampled == from_file


def test_streaming_yields_the_same_text(model: SpeechLLM, wavs: list[str]) -> None:
    pieces = list(stream_answer(model, wavs[1], INSTRUCTIONS[0], max_new_tokens=TOKENS))
    assert "".join(pieces) == answer(model, wavs[1], INSTRUCTIONS[0], max_new_tokens=TOKENS)


def test_streaming_raises_a_generation_error_instead_of_hanging(model: SpeechLLM) -> None:
    with pytest.raises(AudioError, match="not found"):
        list(stream_answer(model, "missing.wav", INSTRUCTIONS[0]))


def test_cli_prints_the_answer_streamed_or_not(
    tiny_run: TinyRun, wavs: list[str], model: SpeechLLM, capsys
) -> None:
    expected = answer(model, wavs[2], INSTRUCTIONS[0], max_new_tokens=TOKENS)
    args = [wavs[2], INSTRUCTIONS[0], "--model", str(tiny_run.export), "--device", "cpu"]
    for extra in ([], ["--stream"]):
        main([*args, "--max-new-tokens", str(TOKENS), *extra])
        assert capsys.readouterr().out == expected + "\n"
