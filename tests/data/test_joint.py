"""Joint training targets: ``ASR: <transcript> | <task>: <answer>`` built from the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.dataset import collate
from speechllm.data.errors import ManifestError
from speechllm.data.joint import joint_target, parse_joint, transcripts, with_joint_targets
from speechllm.data.manifest import read_manifest


@pytest.fixture
def corpus(tmp_path: Path, write_audio, write_lines, line) -> Path:
    for name in ("a", "b", "c"):
        write_audio(tmp_path / f"wavs/{name}.wav", seconds=1.0)
    lines = [
        line("a-asr", "wavs/a.wav", target="wake me up at eight"),
        line("a-ic", "wavs/a.wav", task="ic", target="set_alarm", labels=["set_alarm", "x"]),
        line("a-er", "wavs/a.wav", task="er", target="happy", labels=["happy", "sad"]),
        # the same file, another segment: the first segment's transcript is not its own
        line("a2-ic", "wavs/a.wav", task="ic", target="x", offset=0.5, labels=["set_alarm", "x"]),
        line("b-asc", "wavs/b.wav", task="asc", target="positive", meta={"transcript": "great"}),
        line("c-kws", "wavs/c.wav", task="kws", target="yes", meta={"keyword": "lamp"}),
    ]
    return write_lines(tmp_path / "train.jsonl", lines)


def test_transcripts_come_from_meta_or_the_recordings_asr_line(corpus: Path) -> None:
    assert transcripts(read_manifest(corpus)) == {
        "a-asr": "wake me up at eight",
        "a-ic": "wake me up at eight",
        "a-er": "wake me up at eight",
        "b-asc": "great",
    }


def test_only_the_named_tasks_with_a_transcript_train_jointly(corpus: Path) -> None:
    entries = read_manifest(corpus)
    joint = {e.id: e.target for e in with_joint_targets(entries, {"ic", "asc", "kws", "asr"})}
    assert joint == {
        "a-asr": "wake me up at eight",  # asr is its own transcript
        "a-ic": "ASR: wake me up at eight | ic: set_alarm",
        "a-er": "happy",  # not named
        "a2-ic": "x",  # no transcript for this segment
        "b-asc": "ASR: great | asc: positive",
        "c-kws": "yes",  # no transcript at all
    }
    assert parse_joint(joint["a-ic"]) == ("wake me up at eight", "set_alarm")
    assert with_joint_targets(entries, ()) == entries


def test_a_transcript_with_the_separator_names_its_line(
    tmp_path: Path, write_audio, write_lines, line
) -> None:
    write_audio(tmp_path / "a.wav")
    bad = line("a-ic", "a.wav", task="ic", target="x", meta={"transcript": "this | that"})
    manifest = write_lines(tmp_path / "m.jsonl", [line("ok", "a.wav"), bad])
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: .*joint separator"):
        with_joint_targets(read_manifest(manifest), {"ic"})
    with pytest.raises(ValueError, match="cannot contain"):
        joint_target("this | that", "ic", "x")


def test_data_module_trains_joint_and_validates_plain(corpus: Path, wav2vec2) -> None:
    dm = SpeechDataModule(
        wav2vec2,
        train_manifests=[str(corpus)],
        val_manifests=[str(corpus)],
        num_workers=0,
        joint_tasks=["ic"],
    )
    dm.setup("fit")
    train = {e.id: e.target for e in dm.datasets["train"].entries}
    val = {e.id: e.target for e in dm.datasets["val"].entries}
    assert train["a-ic"] == "ASR: wake me up at eight | ic: set_alarm"
    assert train["b-asc"] == "positive" and val["a-ic"] == "set_alarm"
    item = dm.datasets["train"][1]
    assert item["target"] == train["a-ic"]
    with pytest.raises(ValueError, match="unknown task 'sentiment'"):
        SpeechDataModule(wav2vec2, joint_tasks=["sentiment"])


def test_batches_carry_each_lines_transcript_for_the_distillation_teacher(
    corpus: Path, wav2vec2
) -> None:
    dm = SpeechDataModule(wav2vec2, train_manifests=[str(corpus)], num_workers=0)
    dm.setup("fit")
    dataset = dm.datasets["train"]
    by_id = {dataset[i]["id"]: dataset[i]["transcript"] for i in range(len(dataset))}
    assert by_id == {
        "a-asr": "",  # a transcript task's target is its transcript
        "a-ic": "wake me up at eight",
        "a-er": "wake me up at eight",
        "a2-ic": "",  # another segment of the file: no transcript of its own
        "b-asc": "great",
        "c-kws": "",
    }
    batch = collate([dataset[0], dataset[1]])
    assert batch["transcripts"] == [by_id[i] for i in batch["ids"]]
