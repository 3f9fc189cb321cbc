"""The CTC aligner's own transcript in the evaluation: scored in entry order, once per recording."""

from __future__ import annotations

import pytest
import torch

from speechllm.data.datamodule import eval_batches
from speechllm.data.features import Featurizer
from speechllm.data.manifest import read_manifests
from speechllm.evaluation.ctc_path import ctc_path_scores, ctc_path_section
from speechllm.evaluation.scoring import score_task
from speechllm.models import CTCAligner, SpeechLLM
from tests.tiny_run import TinyRun


@pytest.fixture(scope="module")
def model(tiny_run: TinyRun) -> SpeechLLM:
    return SpeechLLM.from_pretrained(tiny_run.export)


def test_a_model_without_an_aligner_has_no_ctc_path(model: SpeechLLM, tiny_run: TinyRun) -> None:
    entries = read_manifests([str(tiny_run.test)])
    assert model.ctc is None
    assert ctc_path_scores(model, entries, Featurizer.for_encoder(model.encoder)) == {}


def test_the_path_is_scored_per_recording_in_entry_order(
    model: SpeechLLM, tiny_run: TinyRun
) -> None:
    torch.manual_seed(0)
    model.ctc = CTCAligner(model.llm.hidden_size).eval()
    with torch.no_grad():
        model.ctc.log_scale.fill_(3.0)  # sharp: frames pick tokens, not only the blank
    try:
        entries = read_manifests([str(tiny_run.test), str(tiny_run.heldout)])
        featurizer = Featurizer.for_encoder(model.encoder)
        doc = ctc_path_scores(model, entries, featurizer, max_batch_seconds=30.0)
        asr = list({e.audio: e for e in entries if e.task == "asr"}.values())
        alone = []
        for e in asr:  # one recording per batch: no padding, no reordering
            (batch,) = list(eval_batches([e], featurizer))
            texts = model.ctc_transcripts(batch["audio"], batch["audio_lengths"])
            alone += [t.strip() for t in texts]
    finally:
        model.ctc = None
    # the held-out copies share the test lines' audio: each recording is scored once
    assert doc["n"] == len(asr) < sum(e.task == "asr" for e in entries)
    assert [x["path"] for x in doc["examples"]] == alone[:5]
    assert any(alone), "the sharp aligner should emit tokens"
    expected = score_task("asr", alone, [e.target for e in asr], langs=[e.lang for e in asr])
    assert doc["wer"] == pytest.approx(expected["wer"])
    section = ctc_path_section(doc)
    assert f"on {len(asr)} ASR recordings: **{doc['wer']:.1f} WER**" in section
