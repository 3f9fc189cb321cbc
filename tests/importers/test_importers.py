from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechllm.data.manifest import read_manifest
from speechllm.importers import covost2, hf_datasets, lhotse, librispeech, slurp


def _librispeech_chapter(tmp_path: Path, write_audio) -> Path:
    chapter = tmp_path / "LibriSpeech/dev-clean/84/121123"
    for utt in ("0000", "0001"):
        write_audio(chapter / f"84-121123-{utt}.flac", seconds=0.5)
    (chapter / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n"
    )
    return chapter


def test_librispeech(tmp_path: Path, write_audio) -> None:
    chapter = _librispeech_chapter(tmp_path, write_audio)
    out = tmp_path / "manifests/dev.jsonl"
    assert librispeech.to_manifest(tmp_path / "LibriSpeech", "dev-clean", out) == 2
    entries = read_manifest(out)
    assert [(e.id, e.task, e.target) for e in entries] == [
        ("84-121123-0000", "asr", "go do you hear"),
        ("84-121123-0001", "asr", "but in less than five minutes"),
    ]
    assert entries[0].audio == str(chapter / "84-121123-0000.flac") and entries[0].duration == 0.5


def test_slurp(tmp_path: Path, write_audio, caplog) -> None:
    audio = tmp_path / "slurp_real"
    write_audio(audio / "audio-1490200979-headset.flac")
    write_audio(audio / "audio-1490200979.flac")
    row = {
        "slurp_id": 13804,
        "sentence": "wake me up at eight am tomorrow",
        "sentence_annotation": "wake me up at [time : Eight AM] [date : tomorrow]",
        "intent": "alarm_set",
        "recordings": [
            {"file": "audio-1490200979-headset.flac"},
            {"file": "audio-1490200979.flac"},
            {"file": "audio-never-released.flac"},
        ],
    }
    no_slots = {
        **row,
        "slurp_id": 1,
        "sentence_annotation": "wake me up",
        "recordings": [{"file": "audio-1490200979.flac"}],
    }
    split = tmp_path / "slurp/dataset/slurp/devel.jsonl"
    split.parent.mkdir(parents=True)
    split.write_text(json.dumps(row) + "\n" + json.dumps(no_slots) + "\n")
    out = tmp_path / "devel.jsonl"
    assert slurp.to_manifest(split, audio, out) == 3 * 2 + 2
    assert "1 listed recordings not in" in caplog.text  # audio-never-released.flac
    by_id = {e.id: e for e in read_manifest(out)}
    assert by_id["slurp-13804-audio-1490200979-headset-sf"].target == "time=eight am; date=tomorrow"
    assert by_id["slurp-13804-audio-1490200979-ic"].target == "alarm_set"
    assert "slurp-1-audio-1490200979-sf" not in by_id


def test_covost2(tmp_path: Path, write_audio) -> None:
    clips = tmp_path / "cv/clips"
    write_audio(clips / "common_voice_en_1.wav")
    tsv = tmp_path / "covost_v2.en_de.dev.tsv"
    tsv.write_text(
        "path\tsentence\ttranslation\tclient_id\n"
        'common_voice_en_1.wav\tHe said "hi".\tEr sagte "hallo".\tabc\n'
    )
    out = tmp_path / "st.jsonl"
    assert covost2.to_manifest(tsv, clips, out, "en", "de", tasks=("st", "asr")) == 2
    st, asr = read_manifest(out)
    assert (st.task, st.target, st.tgt_lang, st.lang) == ("st", 'Er sagte "hallo".', "de", "en")
    assert (asr.task, asr.target, asr.tgt_lang) == ("asr", 'He said "hi".', None)


def test_lhotse(tmp_path: Path, write_audio) -> None:
    audio = write_audio(tmp_path / "rec.wav", seconds=2.0)
    cut = {
        "id": "cut-1",
        "start": 0.5,
        "duration": 1.0,
        "channel": 0,
        "type": "MonoCut",
        "supervisions": [
            {
                "id": "s1",
                "recording_id": "rec",
                "start": 0.0,
                "duration": 1.0,
                "channel": 0,
                "text": "hello there",
                "speaker": "spk",
            }
        ],
        "recording": {
            "id": "rec",
            "sources": [{"type": "file", "channels": [0], "source": str(audio)}],
            "sampling_rate": 16000,
            "num_samples": 32000,
            "duration": 2.0,
        },
    }
    cuts = tmp_path / "cuts.jsonl.gz"
    with gzip.open(cuts, "wt") as f:
        f.write(json.dumps(cut) + "\n")
    out = tmp_path / "m.jsonl"
    assert lhotse.to_manifest(cuts, out, lang="en") == 1
    (entry,) = read_manifest(out)
    assert (entry.id, entry.offset, entry.duration, entry.target) == (
        "cut-1",
        0.5,
        1.0,
        "hello there",
    )
    assert entry.audio == str(audio)
    cut["recording"]["sources"][0].update(type="url", source="https://example.org/rec.wav")
    plain = tmp_path / "cuts.jsonl"  # uncompressed; a blank first line still counts
    plain.write_text("\n" + json.dumps(cut) + "\n")
    with pytest.raises(ValueError, match=r"cuts\.jsonl:2: recording rec: one file source"):
        lhotse.to_manifest(plain, out)


def test_lhotse_cuts_of_any_recipe_read_as_its_importer_does(tmp_path: Path, write_audio) -> None:
    """The README's path for a corpus we have no importer for: a recipe's output as cuts."""
    from lhotse import CutSet
    from lhotse.recipes import prepare_librispeech

    _librispeech_chapter(tmp_path, write_audio)
    parts = prepare_librispeech(tmp_path / "LibriSpeech", dataset_parts=["dev-clean"])
    cuts = tmp_path / "dev_cuts.jsonl.gz"
    CutSet.from_manifests(**parts["dev-clean"]).trim_to_supervisions().to_file(cuts)
    via_cuts, via_importer = tmp_path / "cuts.jsonl", tmp_path / "importer.jsonl"
    assert lhotse.to_manifest(cuts, via_cuts, lang="en") == 2
    librispeech.to_manifest(tmp_path / "LibriSpeech", "dev-clean", via_importer)
    for cut, line in zip(read_manifest(via_cuts), read_manifest(via_importer), strict=True):
        assert (cut.audio, cut.offset, cut.duration) == (line.audio, line.offset, line.duration)
        assert cut.target.lower() == line.target and cut.lang == line.lang == "en"


def test_hf_rows_with_arrays_and_bytes(tmp_path: Path) -> None:
    wav = io.BytesIO()
    sf.write(wav, np.zeros(8000, np.float32), 8000, format="WAV")
    rows = [
        {
            "audio": {"path": None, "array": np.ones(1600) * 0.1, "sampling_rate": 16000},
            "text": "a",
        },
        {"audio": {"path": "x.wav", "bytes": wav.getvalue()}, "text": "b"},
    ]
    out = tmp_path / "hf.jsonl"
    assert hf_datasets.to_manifest(rows, out, tmp_path / "flac", task="asr") == 2
    first, second = read_manifest(out)
    assert (first.id, first.duration, second.duration, second.target) == (
        "hf-00000000",
        0.1,
        1.0,
        "b",
    )
    data, rate = sf.read(first.audio)
    assert rate == 16000 and np.allclose(data, 0.1, atol=1e-4)
