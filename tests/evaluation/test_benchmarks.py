"""speechllm-eval benchmark=NAME, offline: tiny copies of the public test sets with their real
columns (saved with ``save_to_disk``, as a Hub download would give them) run through the same
path, scored with each benchmark's own normaliser and metric."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from speechllm.cli.eval import run
from speechllm.config import compose
from speechllm.evaluation.benchmarks import BENCHMARKS, SUITES, benchmark_names
from speechllm.evaluation.scoring import score_task
from speechllm.evaluation.speechverse import TEST_SETS, suite_table
from speechllm.models.tiny import save_tiny_export
from speechllm.testing import write_tiny_manifest
from tests.tiny_run import TinyRun


def audio_column(tiny_run: TinyRun, n: int) -> list[dict]:
    lines = [json.loads(x) for x in tiny_run.test.read_text().splitlines()[:n]]
    return [
        {"bytes": (tiny_run.test.parent / x["audio"]).read_bytes(), "path": Path(x["audio"]).name}
        for x in lines
    ]


def save(columns: dict, out: Path) -> str:
    ds = datasets.Dataset.from_dict(columns).cast_column(
        "audio", datasets.Audio(sampling_rate=16000)
    )
    ds.save_to_disk(str(out))
    return str(out)


def evaluate_benchmark(tiny_run: TinyRun, tmp_path: Path, name: str, source: str, *extra: str):
    cfg = compose(
        config_name="eval",
        overrides=[
            f"checkpoint={tiny_run.export}",
            f"benchmark={name}",
            f"benchmark_source={source}",
            f"out={tmp_path / 'out'}",
            "device=cpu",
            "num_workers=0",
            "decoding.max_new_tokens=6",
            *extra,
        ],
    )
    return run(cfg)


def rows_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in (path / "predictions.jsonl").read_text().splitlines()]


def test_librispeech_is_scored_with_the_leaderboard_normaliser(
    tiny_run: TinyRun, tmp_path: Path
) -> None:
    n = 4
    source = save(
        {  # openslr/librispeech_asr's columns
            "file": [f"{i}.flac" for i in range(n)],
            "audio": audio_column(tiny_run, n),
            "text": ["MISTER QUILTER IS THE APOSTLE", "TWENTY ONE", "COLOUR", "UH"],
            "speaker_id": [1] * n,
            "chapter_id": [2] * n,
            "id": [f"1-2-{i:04d}" for i in range(n)],
        },
        tmp_path / "librispeech",
    )
    summary = evaluate_benchmark(tiny_run, tmp_path, "librispeech_test_clean", source)
    out = tmp_path / "out" / "librispeech_test_clean"
    rows = rows_of(out)
    assert [r["id"] for r in rows] == [f"1-2-{i:04d}" for i in range(n)]
    assert all(r["lang"] == "en" and r["task"] == "asr" for r in rows)
    doc = summary["benchmarks"]["librispeech_test_clean"]
    expected = score_task(
        "asr", [r["prediction"] for r in rows], [r["target"] for r in rows], normalizer="whisper"
    )
    assert doc["tasks"]["asr"] == pytest.approx(expected)
    assert doc["scoring"]["asr"] == {"normalizer[en]": "whisper"}
    assert "normalizer[en]: whisper" in (out / "report.md").read_text()
    assert summary["mean"]["asr"]["wer"] == pytest.approx(doc["tasks"]["asr"]["wer"])
    assert json.loads((tmp_path / "out" / "benchmarks.json").read_text()) == summary


def test_covost2_is_scored_with_bleu_and_chrf_for_german(tiny_run: TinyRun, tmp_path: Path) -> None:
    n = 3
    source = save(
        {  # facebook/covost2 en_de's columns
            "client_id": ["c"] * n,
            "file": [f"{i}.mp3" for i in range(n)],
            "audio": audio_column(tiny_run, n),
            "sentence": ["Hello there.", "Good morning.", "How are you?"],
            "translation": ["Hallo.", "Guten Morgen.", "Wie geht es dir?"],
            "id": [f"cv-{i}" for i in range(n)],
        },
        tmp_path / "covost2",
    )
    summary = evaluate_benchmark(tiny_run, tmp_path, "covost2_en_de", source, "limit=2")
    doc = summary["benchmarks"]["covost2_en_de"]
    rows = rows_of(tmp_path / "out" / "covost2_en_de")
    assert len(rows) == 2 and all(r["tgt_lang"] == "de" for r in rows)
    assert [r["target"] for r in rows] == ["Hallo.", "Guten Morgen."]
    assert set(doc["tasks"]["st"]) == {"n", "bleu", "chrf"}
    assert doc["scoring"]["st"] == {"bleu_tokenize[de]": "13a"}


def test_names_suites_and_missing_downloads(tiny_run: TinyRun, tmp_path: Path) -> None:
    assert len(SUITES["open_asr_leaderboard"]) == 8
    assert all(BENCHMARKS[n].normalizer == "whisper" for n in SUITES["open_asr_leaderboard"])
    assert benchmark_names("librispeech") == ("librispeech_test_clean", "librispeech_test_other")
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        benchmark_names("nope")
    cfg = compose(
        config_name="eval",
        overrides=[
            f"checkpoint={tiny_run.export}",
            "benchmark=slurp",
            f"out={tmp_path}",
            "device=cpu",
        ],
    )
    with pytest.raises(ValueError, match="needs data_dir: the SLURP release"):
        run(cfg)
    both = compose(
        config_name="eval",
        overrides=[
            f"checkpoint={tiny_run.export}",
            "benchmark=slurp",
            f"manifest={tiny_run.test}",
            f"out={tmp_path}",
        ],
    )
    with pytest.raises(ValueError, match="either manifest=PATH or benchmark=NAME"):
        run(both)


def test_speechverse_suite_evaluates_what_is_built_and_names_the_rest(tmp_path: Path) -> None:
    """The full suite runs on the recipe's stand-in (tests/recipes/test_speechverse_public.py);
    here a folder holding one test set only, and one holding none."""
    export = save_tiny_export(tmp_path / "export")
    data = tmp_path / "data"
    write_tiny_manifest(data, 4, tasks=("sns",)).rename(data / "musan.test.jsonl")

    def suite(data_dir: Path) -> dict:
        overrides = [f"checkpoint={export}", "benchmark=speechverse", f"data_dir={data_dir}",
                     f"out={tmp_path / 'out'}", "device=cpu", "num_workers=0"]  # fmt: skip
        return run(compose(config_name="eval", overrides=overrides))

    doc = suite(data)
    assert doc["missing"] == [s.name for s in TEST_SETS if s.name != "musan"]
    (sns,) = [row for row in doc["rows"] if row["seen"]]
    assert (sns["task"], sns["metric"], sns["seen"]["n"], sns["heldout"]["n"]) == (
        "sns",
        "uar",
        4,
        4,
    )
    assert len(doc["rows"]) == 12 and (tmp_path / "out/musan/report.md").is_file()
    table = suite_table(doc)
    assert "| **ASR** | ASR | LibriSpeech test-clean | WER ↓ | 0 | - | - |" in table
    assert table.endswith("Not built (no lines in `data_dir`): " + ", ".join(doc["missing"]) + ".")
    with pytest.raises(ValueError, match="has lines; build the test sets with recipes/"):
        suite(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown benchmark 'speechvers'.*speechverse"):
        benchmark_names("speechvers")
