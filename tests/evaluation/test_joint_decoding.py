"""Joint decoding for the tasks trained jointly: answers scored, transcripts' WER beside them."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch

from speechllm.data.joint import joint_target, parse_joint
from speechllm.evaluation.decoding import DecodingConfig, decode_batch
from speechllm.evaluation.run import evaluate
from speechllm.evaluation.scoring import score_task
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.testing import PARITY, tiny_batches, write_tiny_manifest


def build(seed: int) -> SpeechLLM:
    torch.manual_seed(seed)
    return SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm("llama")).eval()


def test_only_the_joint_tasks_decode_a_transcript_first() -> None:
    model = build(seed=8)
    batch = tiny_batches(1, 8, tasks=("asr", "ic", "er"), seed=9)[0]
    labels = {"ic": ["even", "odd"], "er": ["even", "odd"]}
    config = DecodingConfig(max_new_tokens=6, joint=["ic"])
    assert config.is_joint("ic") and not config.is_joint("er")
    every = DecodingConfig(joint=True)
    assert every.is_joint("er") and not every.is_joint("asr")  # asr's answer is the transcript
    records = decode_batch(model, batch, config, labels)
    by_task = {task: [r for r in records if r["task"] == task] for task in labels}
    assert by_task["ic"] and by_task["er"]
    for record in by_task["ic"]:  # transcript, then the best-scoring label
        transcript, answer = parse_joint(record["prediction"])
        assert record["prediction"] == joint_target(transcript, "ic", answer)
        assert answer == labels["ic"][max(range(2), key=record["label_scores"].__getitem__)]
    for record in by_task["er"]:  # constrained to a label, as without joint
        assert record["prediction"] in labels["er"]


def test_evaluate_scores_answers_and_reports_the_transcripts_wer(tmp_path: Path) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 8, tasks=("asr", "ic"), seed=2)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    for line in lines:
        if line["task"] == "ic":
            line["meta"] = {"transcript": "one two three"}
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = DecodingConfig(max_new_tokens=6, joint=["ic"])
    metrics = evaluate(build(seed=3), [str(manifest)], tmp_path / "out", config)
    rows = [json.loads(r) for r in (tmp_path / "out/predictions.jsonl").read_text().splitlines()]
    ic = [r for r in rows if r["task"] == "ic"]
    assert ic and all(r["prediction"] in PARITY for r in ic)  # the answer alone is scored
    assert all("transcript" not in r for r in rows if r["task"] == "asr")
    expected = score_task("asr", [r["transcript"] for r in ic], ["one two three"] * len(ic))
    assert metrics["tasks"]["ic"]["transcript_wer"] == expected["wer"]
    answers = score_task("ic", [r["prediction"] for r in ic], [r["target"] for r in ic])
    assert metrics["tasks"]["ic"]["accuracy"] == answers["accuracy"]
    assert "transcript_wer" not in metrics["tasks"]["asr"]
    assert "transcript_wer=" in (tmp_path / "out/report.md").read_text()
