"""The CTC aligner's own transcript beside the speech LLM's: which half limits its ASR.

A model built with ``ctc_compress`` feeds the LLM the aligner's greedy path, so the path bounds
what the LLM hears: the LLM can mend a path from context, or lose what it carried. Scoring the
path alone on the same ASR recordings, with the same normaliser, puts the two side by side: a
speech LLM near its path's WER needs a better aligner, one well above it a better LLM half.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from speechllm.data.datamodule import eval_batches
from speechllm.data.features import Featurizer
from speechllm.data.manifest import ManifestEntry
from speechllm.evaluation.scoring import score_task
from speechllm.models import SpeechLLM


def ctc_path_scores(
    model: SpeechLLM,
    entries: Sequence[ManifestEntry],
    featurizer: Featurizer,
    normalizer: str = "auto",
    max_batch_seconds: float = 60.0,
    num_workers: int = 0,
) -> dict[str, Any]:
    """The aligner's WER on the ASR entries (each recording once), scored as the LLM's is.

    Returns:
        ``{"wer": ..., "n": ..., "examples": [...]}``, or ``{}`` when the model has no CTC
        aligner or no entry is an ASR line.
    """
    asr = list({e.audio: e for e in entries if e.task == "asr"}.values())
    if model.ctc is None or not asr:
        return {}
    device = next(model.parameters()).device
    paths: dict[str, str] = {}
    for batch in eval_batches(asr, featurizer, max_batch_seconds=max_batch_seconds,
                              num_workers=num_workers):  # fmt: skip
        texts = model.ctc_transcripts(batch["audio"].to(device), batch["audio_lengths"].to(device))
        paths |= dict(zip(batch["ids"], texts, strict=True))
    hypotheses = [paths[e.id].strip() for e in asr]
    targets = [e.target for e in asr]
    scores = score_task("asr", hypotheses, targets, langs=[e.lang for e in asr],
                        normalizer=normalizer)  # fmt: skip
    examples = [{"target": t, "path": h} for t, h in zip(targets[:5], hypotheses[:5], strict=True)]
    return {**scores, "n": len(asr), "examples": examples}


def ctc_path_section(doc: dict[str, Any]) -> str:
    """The report's section on the aligner's own transcript."""
    return "\n".join([
        "## The CTC aligner's own transcript",
        "",
        f"The aligner's greedy path alone (no LLM; what the LLM reads), on {doc['n']} ASR "
        f"recordings: **{doc['wer']:.1f} WER** (the speech LLM's is in the table above).",
        "",
        "| reference | CTC path |",
        "|---|---|",
        *[f"| {e['target']} | {e['path']} |" for e in doc["examples"]],
        "",
    ])  # fmt: skip
