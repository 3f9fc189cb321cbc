"""The encoder's own model as the anchor: Whisper's decoder transcribing the same ASR items.

A speech LLM built on a Whisper encoder has to beat the Whisper model that encoder came from,
or its LLM half adds nothing to transcription. Every evaluation that names the Whisper folder
(``anchor=``) scores Whisper's greedy transcripts on the ASR lines with the same normaliser and
WER as the speech LLM's, so the two figures sit side by side in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

from speechllm.data.audio import load_audio
from speechllm.data.manifest import ManifestEntry
from speechllm.evaluation.scoring import score_task


@torch.inference_mode()
def whisper_transcripts(
    model_dir: str | Path, entries: Sequence[ManifestEntry], batch_size: int = 16
) -> list[str]:
    """Whisper's greedy transcript of each entry's audio (one 30 s window, no timestamps)."""
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    extractor = WhisperFeatureExtractor.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rate = extractor.sampling_rate
    out: list[str] = []
    starts = range(0, len(entries), batch_size)
    for start in tqdm(starts, desc="whisper anchor", unit="batch"):
        chunk = entries[start : start + batch_size]
        audio = [load_audio(e.audio, rate, e.offset, e.duration).numpy() for e in chunk]
        features = extractor(audio, sampling_rate=rate, return_tensors="pt").input_features
        ids = model.generate(features, max_new_tokens=128)
        out += [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return out


def anchor_scores(
    model_dir: str | Path,
    entries: Sequence[ManifestEntry],
    normalizer: str = "auto",
    limit: int | None = None,
) -> dict[str, Any]:
    """Whisper's WER on the ASR entries (each recording once), scored as the speech LLM's is.

    Returns:
        ``{"model": model_dir, "wer": ..., "n": ..., "examples": [...]}``, or ``{}`` when no
        entry is an ASR line.
    """
    unique = {e.audio: e for e in entries if e.task == "asr"}
    asr = list(unique.values())[:limit]
    if not asr:
        return {}
    hypotheses = whisper_transcripts(model_dir, asr)
    targets = [e.target for e in asr]
    scores = score_task("asr", hypotheses, targets, langs=[e.lang for e in asr],
                        normalizer=normalizer)  # fmt: skip
    examples = [
        {"target": t, "whisper": h} for t, h in zip(targets[:5], hypotheses[:5], strict=True)
    ]
    return {"model": str(model_dir), **scores, "n": len(asr), "examples": examples}
