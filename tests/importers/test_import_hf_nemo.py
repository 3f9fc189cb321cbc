"""`speechllm-data import hf` and `import nemo`: a Hugging Face dataset with a standard Audio
column, and a NeMo manifest, become manifests that `speechllm-data check` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf

from speechllm.cli.data import main
from speechllm.data.errors import ManifestError
from speechllm.data.manifest import read_manifest
from speechllm.importers import hf_datasets, nemo


@pytest.fixture
def audio_dataset(tmp_path: Path, write_audio) -> datasets.Dataset:
    """Two clips in a standard ``Audio()`` column, as ``load_dataset`` gives them (decoding
    would need torchcodec)."""
    paths = [str(write_audio(tmp_path / f"clip{i}.wav", seconds=0.5 + i * 0.25)) for i in (0, 1)]
    rows = {"audio": paths, "sentence": ["hello there", "good night"], "key": ["a1", "b2"]}
    return datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio())


def test_to_manifest_reads_a_standard_audio_column_undecoded(
    audio_dataset: datasets.Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "m" / "hf.jsonl"
    written = hf_datasets.to_manifest(
        audio_dataset, out, tmp_path / "flac", target_column="sentence", id_column="key"
    )
    assert written == 2
    first, second = read_manifest(out)
    assert (first.id, first.target, second.id, second.target) == (
        "a1", "hello there", "b2", "good night"
    )  # fmt: skip
    assert (first.duration, second.duration) == (0.5, 0.75)
    original, rate = sf.read(tmp_path / "clip1.wav", dtype="float32")
    copied, copied_rate = sf.read(second.audio, dtype="float32")
    assert copied_rate == rate and np.allclose(copied, original, atol=1e-4)


def test_cli_import_hf_from_a_saved_dataset(
    audio_dataset: datasets.Dataset, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    saved = tmp_path / "saved"
    datasets.DatasetDict({"test": audio_dataset}).save_to_disk(str(saved))
    out = tmp_path / "out" / "cv_test.jsonl"
    args = ["import", "hf", str(saved), str(out), "--split", "test", "--text-column", "sentence"]
    assert main([*args, "--lang", "en", "--limit", "1"]) == 0
    assert f"wrote 1 line(s) to {out}" in capsys.readouterr().out
    (entry,) = read_manifest(out)
    assert (entry.id, entry.task, entry.target, entry.lang) == (
        "cv_test-00000000", "asr", "hello there", "en"
    )  # fmt: skip
    assert Path(entry.audio).parent == tmp_path / "out" / "cv_test"  # OUT without .jsonl
    assert main(["check", str(out)]) == 0


def test_cli_import_nemo(tmp_path: Path, write_audio, capsys: pytest.CaptureFixture) -> None:
    write_audio(tmp_path / "wavs" / "a.wav", seconds=1.0)
    absolute = write_audio(tmp_path / "elsewhere" / "b.wav", seconds=2.0)
    source = tmp_path / "nemo" / "train_manifest.json"
    source.parent.mkdir()
    lines = [
        {"audio_filepath": "../wavs/a.wav", "text": "turn on the lights", "duration": 1.0},
        {"audio_filepath": str(absolute), "text": "hello", "duration": 1.5, "offset": 0.5},
    ]
    source.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["check", str(source)]) == 1  # refused as it is, with the way in named
    assert "speechllm-data import nemo IN OUT" in capsys.readouterr().out
    out = tmp_path / "manifests" / "train.jsonl"
    assert main(["import", "nemo", str(source), str(out), "--task", "asr"]) == 0
    first, second = read_manifest(out)
    assert (first.id, first.task, first.target, first.duration) == (
        "train_manifest-00000001", "asr", "turn on the lights", 1.0
    )  # fmt: skip
    assert Path(first.audio) == (tmp_path / "wavs" / "a.wav").resolve()
    assert (second.offset, second.duration, Path(second.audio)) == (0.5, 1.5, absolute)
    assert main(["check", str(out)]) == 0


def test_nemo_line_without_audio_names_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text('{"audio_filepath": "a.wav", "text": "x"}\n{"text": "y"}\n')
    with pytest.raises(ManifestError, match=r"bad\.json:2: NeMo line without \['audio_filepath'\]"):
        nemo.to_manifest(source, tmp_path / "out.jsonl")
