"""``speechllm-data shard``: JSONL (the synthetic benchmark), HF datasets and CutSets to Shar."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_module
from lhotse import CutSet, Recording
from lhotse.shar.readers.lazy import LazySharIterator

from speechllm.cli.data import main
from speechllm.data.audio import load_audio
from speechllm.data.cuts import cut_of, entry_of
from speechllm.data.manifest import read_manifests
from speechllm.data.shards import INDEX, read_shards
from speechllm.importers.shards import cuts_from_manifests, write_shards
from speechllm.synth import generate
from speechllm.testing import write_tiny_manifest


def read_back(root: Path) -> dict[str, tuple]:
    """Every sharded item by id: (entry, samples, sampling rate)."""
    items = {}
    for shards in read_shards(root).values():
        for shard in shards:
            fields = {"cuts": [shard.cuts], "recording": [shard.recording]}
            for position, cut in enumerate(LazySharIterator(fields=fields), start=1):
                entry = entry_of(cut, shard.recording, position)
                items[cut.id] = (entry, cut.load_audio()[0], cut.sampling_rate)
    return items


def test_shard_converts_the_synthetic_benchmark(tmp_path: Path, capsys) -> None:
    with initialize_config_module("speechllm.synth.conf", version_base="1.3"):
        cfg = compose(
            "synth",
            overrides=["preset=tiny", f"out={tmp_path / 'synth'}", "workers=1", "n_train=24"]
            + ["n_dev=1", "n_test=1"],
        )
    generate(dict(cfg))
    manifest = tmp_path / "synth" / "train.jsonl"
    out = tmp_path / "shards"
    assert main(["shard", "jsonl", str(manifest), "--out", str(out), "--shard-size", "2"]) == 0
    entries = {e.id: e for e in read_manifests([manifest])}
    items = read_back(out)
    assert set(items) == set(entries)
    for utt, (entry, samples, rate) in items.items():
        want = entries[utt]
        assert (entry.task, entry.target, entry.labels, entry.meta, entry.tgt_lang) == (
            want.task,
            want.target,
            want.labels,
            want.meta,
            want.tgt_lang,
        )
        assert rate == sf.info(want.audio).samplerate
        original = load_audio(want.audio, None, want.offset, want.duration)  # the JSONL path
        np.testing.assert_allclose(samples, original.numpy(), atol=1e-4)  # FLAC is lossless
    printed = capsys.readouterr().out
    for task, shards in read_shards(out).items():
        count = sum(e.task == task for e in entries.values())
        assert sum(s.items for s in shards) == count
        assert f"{task}: {count} item(s)" in printed


def test_shard_converts_a_hugging_face_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    clips, blobs = [], []
    for n in (4000, 6400, 8000):
        clip = (0.1 * rng.standard_normal(n)).astype(np.float32)
        buffer = io.BytesIO()
        sf.write(buffer, clip, 16000, format="FLAC")
        clips.append(clip)
        blobs.append({"bytes": buffer.getvalue(), "path": None})
    rows = {"audio": blobs, "sentence": ["one", "two", "three"], "key": ["a", "b", "c"]}
    hf = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio())
    hf.save_to_disk(tmp_path / "hf")
    out = tmp_path / "shards"
    args = ["shard", "hf", str(tmp_path / "hf"), "--out", str(out), "--task", "asr"]
    assert main([*args, "--target-column", "sentence", "--id-column", "key"]) == 0
    items = read_back(out)
    assert sorted(items) == ["a", "b", "c"]
    for utt, clip, text in zip("abc", clips, rows["sentence"], strict=True):
        entry, samples, rate = items[utt]
        assert (entry.task, entry.target, rate) == ("asr", text, 16000)
        assert entry.duration == pytest.approx(len(clip) / 16000)
        np.testing.assert_allclose(samples, clip, atol=1e-4)


def test_shard_converts_a_lhotse_cutset(tmp_path: Path, write_audio) -> None:
    recording = Recording.from_file(write_audio(tmp_path / "a.flac", seconds=2.0), "rec")
    fields = {"id": "seg", "task": "asr", "target": "hi", "offset": 0.5, "duration": 1.0}
    cut = cut_of(recording, fields)
    cut.custom = None  # as lhotse.recipes writes them: the task comes from the command line
    CutSet([cut]).to_file(tmp_path / "cuts.jsonl.gz")
    out = tmp_path / "shards"
    assert main(["shard", "cuts", str(tmp_path / "cuts.jsonl.gz"), "--out", str(out)]) == 0
    entry, samples, _ = read_back(out)["seg"]
    assert (entry.task, entry.target, len(samples)) == ("asr", "hi", 16000)


def test_interrupted_write_resumes_after_the_last_finished_shard(tmp_path: Path) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 20, tasks=("asr",))

    def cuts():  # the input, read again in the same order by each write
        return cuts_from_manifests([manifest])

    def interrupted():
        for number, cut in enumerate(cuts()):
            if number == 11:
                raise KeyboardInterrupt
            yield cut

    out = tmp_path / "shards"
    with pytest.raises(KeyboardInterrupt):
        write_shards(interrupted(), out, shard_size=4)
    index = json.loads((out / "asr" / INDEX).read_text())
    assert [s["items"] for s in index["shards"]] == [4, 4]
    first = (out / "asr" / "recording.000000.tar").stat().st_mtime_ns
    assert write_shards(cuts(), out, shard_size=4) == {"asr": 20}
    assert (out / "asr" / "recording.000000.tar").stat().st_mtime_ns == first  # not rewritten
    whole = tmp_path / "whole"
    write_shards(cuts(), whole, shard_size=4)
    assert [list(i) for i in _ids_by_shard(out)] == [list(i) for i in _ids_by_shard(whole)]
    with pytest.raises(ValueError, match="shard_size 4, not 5"):
        write_shards(cuts(), out, shard_size=5)


def _ids_by_shard(root: Path) -> list[list[str]]:
    return [[c.id for c in CutSet.from_file(shard.cuts)] for shard in read_shards(root)["asr"]]
