"""The tiny data: a manifest the data layer reads back, batches in the data contract."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from speechllm.data.manifest import read_manifest
from speechllm.testing import PARITY, WORDS, tiny_batches, tiny_examples, write_tiny_manifest


def test_the_tiny_manifest_reads_back_as_its_examples(tmp_path: Path) -> None:
    tasks = ("asr", "ic", "st", "kws")
    manifest = write_tiny_manifest(tmp_path / "data", 12, tasks=tasks, seed=4)
    entries = read_manifest(manifest)
    examples = tiny_examples(12, tasks, seed=4)
    assert [e.id for e in entries] == [x["id"] for x in examples]
    for entry, example in zip(entries, examples, strict=True):
        audio, rate = sf.read(entry.audio)
        assert rate == 16000 and len(audio) == len(example["audio"])
        assert entry.duration == len(audio) / 16000 and entry.target == example["target"]
        assert entry.labels == (None if entry.task == "asr" else PARITY)
        assert entry.target in (WORDS if entry.task == "asr" else PARITY)
    assert {e.task for e in entries} == set(tasks)
    assert all(line.count('"audio": "wavs/') for line in manifest.read_text().splitlines())


def test_tiny_batches_follow_the_batch_contract() -> None:
    batch = tiny_batches(num_batches=1, batch_size=3, tasks=("asr", "ic"), seed=2)[0]
    assert batch["audio"].shape == (3, int(batch["audio_lengths"].max()))
    assert len(batch["instructions"]) == len(batch["targets"]) == len(batch["ids"]) == 3
    assert set(batch["tasks"]) <= {"asr", "ic"}
