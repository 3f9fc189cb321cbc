"""Public benchmarks in one command: the standard test sets, scored the way their papers are.

``speechllm-eval benchmark=<name> checkpoint=...`` turns a test set into a manifest (audio
written once as FLAC under ``<out>/data``) and runs :func:`speechllm.evaluation.run.evaluate`
with the benchmark's normaliser, so the report has the usual form::

    Hugging Face dataset id ─┐
    (or a save_to_disk copy) ├─► manifest + FLAC ─► evaluate(normalizer=...) ─► report
    SLURP release folder ────┘

A suite (``open_asr_leaderboard``, ``librispeech``) runs each of its sets into its own folder
and adds their mean, as the Open ASR Leaderboard averages its per-set WERs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from tqdm import tqdm

from speechllm.evaluation.decoding import DecodingConfig
from speechllm.evaluation.run import evaluate
from speechllm.importers import hf_datasets, slurp
from speechllm.models.speech_llm import SpeechLLM


@dataclass(frozen=True)
class Benchmark:
    """One standard test set and how it is scored."""

    name: str
    dataset: str
    """Hugging Face dataset id, or ``slurp`` for the SLURP release (needs ``data_dir``)."""
    config: str | None
    split: str
    task: str
    target: str
    """Column holding the reference."""
    normalizer: str = "whisper"
    """Transcript normaliser; the leaderboard's (Whisper's English one) for English ASR."""
    fields: dict[str, Any] = field(default_factory=dict)
    """Manifest fields of every line (``lang``, ``tgt_lang``)."""
    audio: str = "audio"
    id_column: str | None = "id"
    needs_data_dir: str = ""
    """Manual download the dataset needs before it loads (empty: none)."""
    published: str = ""
    """How published numbers on it are computed, for the README table."""


_OAL = "hf-audio/esb-datasets-test-only-sorted"
_OAL_NOTE = (
    "Open ASR Leaderboard: Whisper EnglishTextNormalizer, empty references dropped, corpus WER"
)
_EN = {"lang": "en"}

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("librispeech_test_clean", "openslr/librispeech_asr", "clean", "test", "asr",
                  "text", fields=_EN, published=_OAL_NOTE),
        Benchmark("librispeech_test_other", "openslr/librispeech_asr", "other", "test", "asr",
                  "text", fields=_EN, published=_OAL_NOTE),
        *(
            Benchmark(f"oal_{name}", _OAL, config, split, "asr", "text", fields=_EN,
                      published=_OAL_NOTE)
            for name, config, split in (
                ("ami", "ami", "test"),
                ("earnings22", "earnings22", "test"),
                ("gigaspeech", "gigaspeech", "test"),
                ("librispeech_clean", "librispeech", "test.clean"),
                ("librispeech_other", "librispeech", "test.other"),
                ("spgispeech", "spgispeech", "test"),
                ("tedlium", "tedlium", "test"),
                ("voxpopuli", "voxpopuli", "test"),
            )
        ),
        Benchmark("fleurs_en_us", "google/fleurs", "en_us", "test", "asr", "transcription",
                  fields=_EN, published="FLEURS ASR: Whisper normaliser, corpus WER"),
        Benchmark("covost2_en_de", "facebook/covost2", "en_de", "test", "st", "translation",
                  fields={"lang": "en", "tgt_lang": "de"},
                  needs_data_dir="Common Voice 4.0 English (covost2's loading script reads it)",
                  published="CoVoST 2: SacreBLEU 13a, case-sensitive, detokenised (ESPnet, s3prl)"),
        Benchmark("slurp", "slurp", None, "test", "ic", "intent", id_column=None,
                  needs_data_dir="the SLURP release: dataset/slurp/test.jsonl and slurp_real/",
                  published="SLURP: intent accuracy; SLU-F1 from its scripts/evaluation"),
    )
}  # fmt: skip
"""Every benchmark by name."""

SUITES: dict[str, tuple[str, ...]] = {
    "open_asr_leaderboard": tuple(n for n in BENCHMARKS if n.startswith("oal_")),
    "librispeech": ("librispeech_test_clean", "librispeech_test_other"),
}
"""Named groups of benchmarks, scored by the mean of their headline metrics."""


def benchmark_names(name: str) -> tuple[str, ...]:
    """The benchmarks ``name`` stands for (itself, or a suite's members)."""
    if name in SUITES:
        return SUITES[name]
    if name in BENCHMARKS:
        return (name,)
    known = [*sorted(BENCHMARKS), *sorted(SUITES), "speechverse (data_dir=: a built recipe)"]
    raise ValueError(f"unknown benchmark {name!r}; known: {known}")


def _rows(bench: Benchmark, source: str | None, data_dir: str | None) -> Iterable[dict[str, Any]]:
    """The test split's rows, audio left undecoded (bytes or a path: no decoder dependency)."""
    if source is not None:
        loaded = datasets.load_from_disk(source)
        if isinstance(loaded, datasets.DatasetDict):
            loaded = loaded[bench.split]
    else:
        loaded = datasets.load_dataset(
            bench.dataset, bench.config, split=bench.split, data_dir=data_dir
        )
    return loaded.cast_column(bench.audio, datasets.Audio(decode=False))


def prepare(
    bench: Benchmark,
    out_dir: Path,
    source: str | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
) -> Path:
    """Write the benchmark's manifest (and FLAC files) under ``out_dir``; returns the manifest.

    Args:
        bench: The benchmark.
        out_dir: Folder for ``manifest.jsonl`` and ``audio/``.
        source: A local ``save_to_disk`` copy of the dataset to read instead of the Hub.
        data_dir: The manual download the dataset needs (``bench.needs_data_dir``).
        limit: Only the first ``limit`` items (of a Hugging Face dataset: SLURP's manifest
            refers to the release's audio, so :func:`evaluate` cuts it).
    """
    manifest = out_dir / "manifest.jsonl"
    if bench.dataset == "slurp":
        if data_dir is None:
            raise ValueError(f"benchmark {bench.name!r} needs data_dir: {bench.needs_data_dir}")
        root = Path(data_dir)
        slurp.to_manifest(
            root / "dataset/slurp/test.jsonl", root / "slurp_real", manifest, ("ic", "sf")
        )
        if limit is not None:
            lines = manifest.read_text().splitlines()
            kept = [
                x
                for t in ("ic", "sf")
                for x in [y for y in lines if json.loads(y)["task"] == t][:limit]
            ]
            manifest.write_text("\n".join(kept) + "\n")
        return manifest
    if bench.needs_data_dir and data_dir is None and source is None:
        raise ValueError(f"benchmark {bench.name!r} needs data_dir: {bench.needs_data_dir}")
    rows = _rows(bench, source, data_dir)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    hf_datasets.to_manifest(
        tqdm(rows, desc=f"preparing {bench.name}", unit="item"),
        manifest,
        out_dir / "audio",
        task=bench.task,
        target_column=bench.target,
        id_column=bench.id_column,
        id_prefix=bench.name,
        fields=bench.fields,
    )
    return manifest


def run_benchmark(
    model: SpeechLLM,
    name: str,
    out_dir: str | Path,
    decoding: DecodingConfig,
    source: str | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
    normalizer: str | None = None,
    **evaluate_kwargs: Any,
) -> dict[str, Any]:
    """Evaluate ``model`` on a benchmark or suite; each set's report goes to ``out_dir/<set>``.

    Args:
        model: The speech LLM, on the device to evaluate on.
        name: A key of :data:`BENCHMARKS` or :data:`SUITES`.
        out_dir: Report folder.
        decoding: Decoding settings.
        source: A local ``save_to_disk`` copy of the dataset (one benchmark only).
        data_dir: The manual download a benchmark needs.
        limit: Only the first ``limit`` items of each set.
        normalizer: Override the benchmark's transcript normaliser.
        **evaluate_kwargs: Further :func:`evaluate` arguments.

    Returns:
        ``{"benchmarks": {set: metrics.json document}, "mean": {task: {metric: mean}}}``.
    """
    names = benchmark_names(name)
    if source is not None and len(names) > 1:
        raise ValueError("source= names one dataset copy; run the suite's benchmarks one by one")
    out = Path(out_dir)
    results = {}
    for bench_name in names:
        bench = BENCHMARKS[bench_name]
        manifest = prepare(bench, out / bench_name / "data", source, data_dir, limit)
        results[bench_name] = evaluate(
            model,
            [str(manifest)],
            out / bench_name,
            decoding,
            limit=limit,
            normalizer=normalizer or bench.normalizer,
            **evaluate_kwargs,
        )
    summary = {"benchmarks": results, "mean": _mean(results)}
    (out / "benchmarks.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _mean(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per task and metric, the plain mean over the sets that report it."""
    values: dict[str, dict[str, list[float]]] = {}
    for doc in results.values():
        for task, scores in doc["tasks"].items():
            for metric, value in scores.items():
                if metric != "n":
                    values.setdefault(task, {}).setdefault(metric, []).append(value)
    return {t: {m: float(np.mean(v)) for m, v in ms.items()} for t, ms in values.items()}
