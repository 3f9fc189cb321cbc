"""The sharded training stream: exact resume, disjoint lanes, stage switches, bad audio."""

from __future__ import annotations

import itertools
import json
import shutil
import tarfile
from pathlib import Path

import fsspec
import pytest
from torch.utils.data import DataLoader

from speechllm.data.errors import DataError
from speechllm.data.features import Featurizer
from speechllm.data.sampler import Batching
from speechllm.data.sharded_datamodule import ShardedDataModule
from speechllm.data.shards import read_shards
from speechllm.data.streaming import ShardStream
from speechllm.importers.shards import cuts_from_manifests, write_shards
from speechllm.testing import write_tiny_manifest

BATCHING = Batching(max_batch_seconds=3.0, pool_size=4)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    manifest = write_tiny_manifest(root / "data", 64)
    write_shards(cuts_from_manifests([manifest]), root / "shards", shard_size=4)
    return root / "shards"


def stream(shards: Path, featurizer: Featurizer, **kwargs) -> ShardStream:
    settings = dict(num_workers=2, world_size=2, schedule=[(0, {"asr": 1.0, "ic": 1.0})])
    settings.update(kwargs)
    return ShardStream(read_shards(shards), featurizer, BATCHING, **settings)


def batches(data: ShardStream, n: int) -> list[tuple[str, tuple[str, ...]]]:
    loader = DataLoader(data, batch_size=None, num_workers=data.workers)
    return [(b["tasks"][0], tuple(b["ids"])) for b in itertools.islice(loader, n)]


def test_resume_at_any_batch_sees_the_uninterrupted_batches(shards, wav2vec2) -> None:
    schedule = [(0, {"asr": 1.0, "ic": 1.0}), (9, {"ic": 1.0})]  # a stage switch at batch 9
    for rank in (0, 1):
        full = batches(stream(shards, wav2vec2, rank=rank, schedule=schedule), 24)
        assert {task for task, _ in full[:9]} == {"asr", "ic"}
        assert {task for task, _ in full[9:]} == {"ic"}
        for start in (5, 14):
            resumed = stream(shards, wav2vec2, rank=rank, schedule=schedule, start_batch=start)
            assert batches(resumed, 24 - start) == full[start:], (rank, start)


def test_ranks_and_workers_read_disjoint_shards(shards, wav2vec2) -> None:
    # 8 asr shards over 4 lanes: each lane's first epoch is 2 shards (>= 3 batches of <= 3 items)
    seen = []
    for rank in (0, 1):
        ids = [
            i
            for _, b in batches(stream(shards, wav2vec2, rank=rank, schedule=[(0, {"asr": 1})]), 6)
            for i in b
        ]
        seen.append(ids)
        assert len(ids) == len(set(ids))
    assert not set(seen[0]) & set(seen[1])


def test_a_new_stage_reaches_running_workers(shards, wav2vec2) -> None:
    data = stream(shards, wav2vec2, schedule=[(0, {"asr": 1.0})])
    loader = iter(DataLoader(data, batch_size=None, num_workers=2, prefetch_factor=1))
    assert [next(loader)["tasks"][0] for _ in range(3)] == ["asr"] * 3
    data.set_schedule([(0, {"ic": 1.0})])
    after = [next(loader)["tasks"][0] for _ in range(6)]
    assert set(after[2:]) == {"ic"}  # the two batches already prefetched keep the old mixture


def test_too_few_shards_for_the_lanes_is_refused(shards, wav2vec2) -> None:
    with pytest.raises(ValueError, match=r"fewer shards than the 64 lanes"):
        stream(shards, wav2vec2, world_size=32)


def test_bad_audio_is_skipped_and_named_by_shard_and_position(tmp_path, wav2vec2) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 8, tasks=("asr",))
    write_shards(cuts_from_manifests([manifest]), tmp_path / "shards", shard_size=8)
    tar = tmp_path / "shards" / "asr" / "recording.000000.tar"
    with tarfile.open(tar) as archive:
        member = [m for m in archive.getmembers() if m.name.endswith(".flac")][2]
    with open(tar, "r+b") as f:  # garble the third clip's FLAC stream
        f.seek(member.offset_data)
        f.write(b"\0" * member.size)
    position = 3
    kwargs = dict(num_workers=0, world_size=1, schedule=[(0, {"asr": 1.0})])
    data = stream(tmp_path / "shards", wav2vec2, skip_bad=True, **kwargs)
    bad = [e for b in itertools.islice(iter(data), 8) for e in _bad(b)]
    assert bad and {(e.source, e.line, e.reason) for e in bad} == {
        (str(tar), position, "unreadable")
    }
    with pytest.raises(DataError, match=rf"{tar}:{position}: .*\[unreadable\]"):
        list(itertools.islice(iter(stream(tmp_path / "shards", wav2vec2, **kwargs)), 8))


def _bad(batch: dict) -> list[DataError]:
    return batch["bad_items"]


def test_resume_under_another_layout_is_refused(shards, wav2vec2) -> None:
    saved = ShardedDataModule(wav2vec2, str(shards), num_workers=2).state_dict()
    assert saved == {"world_size": 1, "num_workers": 2, "seed": 0, "shards": {"asr": 8, "ic": 8}}
    ShardedDataModule(wav2vec2, str(shards), num_workers=2).load_state_dict(saved)
    with pytest.raises(ValueError, match="resume with the same devices, num_workers"):
        ShardedDataModule(wav2vec2, str(shards), num_workers=1).load_state_dict(saved)


def test_shards_at_a_url_stream_as_the_local_ones(shards, wav2vec2) -> None:
    """Object storage: an fsspec URL (here ``memory://``, inherited by the forked workers)."""
    fs = fsspec.filesystem("memory")
    fs.put(str(shards), "/bucket/shards", recursive=True)
    remote = read_shards("memory://bucket/shards")
    assert remote["asr"][0].recording.startswith("memory:///bucket/shards/asr/")
    settings = dict(num_workers=2, world_size=1, schedule=[(0, {"asr": 1.0, "ic": 1.0})])
    local = ShardStream(read_shards(shards), wav2vec2, BATCHING, **settings)
    from_url = ShardStream(remote, wav2vec2, BATCHING, **settings)
    assert batches(from_url, 8) == batches(local, 8)


@pytest.mark.parametrize("name", ["../ic/cuts.000000.jsonl.gz", "pipe:touch x", "/etc/passwd"])
def test_an_index_naming_a_file_outside_its_folder_is_refused(shards, tmp_path, name) -> None:
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    index = copy / "asr" / "index.json"
    document = json.loads(index.read_text())
    document["shards"][0]["cuts"] = name
    index.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"asr/index.json: cuts .* is not a file name"):
        read_shards(copy)
