from __future__ import annotations

from pathlib import Path

import pytest

from speechllm.data.errors import DataError, ManifestError
from speechllm.data.manifest import read_manifest, read_manifests, write_manifest


def test_reads_fields_and_resolves_audio_against_manifest_folder(
    tmp_path: Path, write_audio, write_lines, line
) -> None:
    write_audio(tmp_path / "corpus/wavs/a.wav", seconds=0.75)
    manifest = write_lines(
        tmp_path / "corpus/train.jsonl",
        [
            line("a", "wavs/a.wav"),  # no duration: measured from the file
            line(
                "b",
                "wavs/a.wav",
                task="st",
                duration=0.5,
                offset=0.25,
                tgt_lang="de",
                meta={"keyword": "x"},
            ),
        ],
    )
    a, b = read_manifest(manifest)
    assert a.audio == str(tmp_path / "corpus/wavs/a.wav")
    assert a.duration == pytest.approx(0.75)
    assert (b.task, b.offset, b.duration, b.tgt_lang, b.meta) == (
        "st",
        0.25,
        0.5,
        "de",
        {"keyword": "x"},
    )
    assert (a.source, a.line, b.line) == (str(manifest), 1, 2)


@pytest.mark.parametrize(
    ("bad", "reason", "text"),
    [
        ('{"id": "x", "audio": ', "malformed_json", "malformed JSON"),
        ({"target": "  "}, "empty_target", "empty target"),
        ({"task": "dance"}, "unknown_task", "unknown task 'dance'"),
        ('{"id": "x", "audio": "a.wav", "task": "asr"}', "missing_field", "['target']"),
        ({"audio": "missing.wav", "duration": None}, "missing_file", "not found"),
        ({"duration": -1}, "bad_field", "'duration'"),
        ({"colour": "red"}, "bad_field", "colour"),
        ({"id": "g1"}, "duplicate_id", "duplicate id 'g1'"),
    ],
)
def test_bad_line_names_file_and_line(
    tmp_path: Path, write_audio, write_lines, line, bad, reason: str, text: str
) -> None:
    write_audio(tmp_path / "a.wav")
    good = [line("g1", "a.wav", duration=0.5), line("g2", "a.wav", duration=0.5)]
    if isinstance(bad, dict):  # overrides of a good line; a None duration is measured
        bad = {
            k: v for k, v in {**line("x", "a.wav", duration=0.5), **bad}.items() if v is not None
        }
    manifest = write_lines(tmp_path / "m.jsonl", [*good, bad])
    with pytest.raises(ManifestError) as caught:
        read_manifest(manifest)
    assert caught.value.reason == reason
    assert f"{manifest}:3:" in str(caught.value) and text in str(caught.value)

    errors: list[DataError] = []
    entries = read_manifest(manifest, errors.append)
    assert [e.id for e in entries] == ["g1", "g2"]
    assert [(e.reason, e.line) for e in errors] == [(reason, 3)]


def test_duplicate_ids_across_manifests(tmp_path: Path, write_audio, write_lines, line) -> None:
    write_audio(tmp_path / "a.wav")
    first = write_lines(tmp_path / "a.jsonl", [line("x", "a.wav", duration=0.5)])
    second = write_lines(tmp_path / "b.jsonl", [line("x", "a.wav", task="ic", duration=0.5)])
    with pytest.raises(
        ManifestError, match=r"b.jsonl:1: duplicate id 'x' \(first at .*a.jsonl:1\)"
    ):
        read_manifests([first, second])


def test_write_manifest_round_trips_with_relative_paths(
    tmp_path: Path, write_audio, write_lines, line
) -> None:
    audio = write_audio(tmp_path / "audio/x.wav")
    out = tmp_path / "manifests/x.jsonl"
    assert write_manifest([line("x", str(audio), duration=0.5)], out) == 1
    assert '"audio": "../audio/x.wav"' in out.read_text()
    assert read_manifest(out)[0].audio == str(audio)
