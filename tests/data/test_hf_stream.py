"""Hugging Face datasets streamed as training shards: one data file per shard, read through
``load_dataset(..., streaming=True)`` from parquet files written here (offline)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile as sf
from torch.utils.data import DataLoader

from speechllm.data.errors import DataError
from speechllm.data.hf_stream import HFSource, hf_shards
from speechllm.data.sampler import Batching
from speechllm.data.sharded_datamodule import ShardedDataModule
from speechllm.data.streaming import ShardStream
from tests.conftest import tone

BATCHING = Batching(max_batch_seconds=3.0, pool_size=4)
FILES, ROWS = 8, 6  # rows per file


def flac(seconds: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, tone(seconds), 16000, format="FLAC")
    return buffer.getvalue()


def write_parquet(rows: list[dict[str, Any]], folder: Path, files: int) -> list[str]:
    """``rows`` (audio as ``{"bytes": ...}``) as ``files`` parquet files, as the Hub stores a
    dataset: contiguous slices, the audio column an ``Audio`` feature."""
    folder.mkdir(parents=True, exist_ok=True)
    table = datasets.Dataset.from_list(rows).cast_column("audio", datasets.Audio(decode=False))
    paths = [str(folder / f"train-{i:05d}-of-{files:05d}.parquet") for i in range(files)]
    for i, path in enumerate(paths):
        table.shard(files, i, contiguous=True).to_parquet(path)
    return paths


def row(n: int, seconds: float) -> dict[str, Any]:
    """A row as speech datasets on the Hub hold them (Common Voice's column names)."""
    return {
        "audio": {"bytes": flac(seconds), "path": None},
        "sentence": f"clip {n}",
        "locale": ("en", "de", "fr")[n % 3],
        "intent": "yes",
        "key": f"c{n:02d}",
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    seconds = np.random.default_rng(0).uniform(0.5, 1.0, FILES * ROWS).round(3)
    rows = [row(n, s) for n, s in enumerate(seconds)]
    return write_parquet(rows, tmp_path_factory.mktemp("hf"), FILES)


def sources(files: str | list[str], tasks=("asr", "ic")) -> dict[str, HFSource]:
    targets = {"asr": "sentence", "ic": "intent"}
    return {
        task: HFSource.from_config(
            task,
            {
                "path": "parquet",
                "data_files": files,
                "target_column": targets[task],
                "id_column": "key",
                "lang_column": "locale",
            }
            | ({"fields": {"labels": ["yes", "no"]}} if task == "ic" else {}),
        )
        for task in tasks
    }


def stream(files: list[str], featurizer, tasks=("asr", "ic"), **kwargs) -> ShardStream:
    settings = dict(num_workers=2, world_size=2, schedule=[(0, {t: 1.0 for t in tasks})])
    settings.update(kwargs)
    return ShardStream(hf_shards(sources(files, tasks)), featurizer, BATCHING, **settings)


def batches(data: ShardStream, n: int) -> list[tuple[str, tuple[str, ...]]]:
    loader = DataLoader(data, batch_size=None, num_workers=data.workers)
    return [(b["tasks"][0], tuple(b["ids"])) for b in itertools.islice(loader, n)]


def test_each_data_file_is_a_shard_in_load_datasets_order(files) -> None:
    glob = str(Path(files[0]).parent / "train-*.parquet")  # as a user names a folder's files
    shards = hf_shards(sources(glob, ("asr",)))["asr"]
    assert [s.file for s in shards] == files
    streamed = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
    streamed = streamed.cast_column("audio", datasets.Audio(decode=False))
    want = [
        (r["key"], r["sentence"], r["locale"], sf.info(io.BytesIO(r["audio"]["bytes"])).duration)
        for r in streamed
    ]
    got = [
        (c.id, c.supervisions[0].text, c.supervisions[0].language, c.duration)
        for s in shards
        for c in s.read()
    ]
    assert got == want
    assert [d for s in shards for d in s.durations()] == [w[-1] for w in want]
    assert {c.id for c in shards[3].read()} == {f"c{n:02d}" for n in range(3 * ROWS, 4 * ROWS)}
    unnamed = HFSource("parquet", data_files=files[1], target_column="sentence")  # no id column
    ids = [c.id for c in hf_shards({"asr": unnamed})["asr"][0].read()]
    assert ids == [f"{files[1]}:{row}" for row in range(1, ROWS + 1)]


def test_ranks_and_workers_read_disjoint_files(files, wav2vec2) -> None:
    # 8 files over 4 lanes: each lane's first epoch is 2 files (>= 3 batches of <= 3 s)
    files_of = {}  # (rank, worker) -> files its batches came from
    for rank in (0, 1):
        for k, (_, ids) in enumerate(batches(stream(files, wav2vec2, ("asr",), rank=rank), 6)):
            files_of.setdefault((rank, k % 2), set()).update(int(i[1:]) // ROWS for i in ids)
    assert len(files_of) == 4
    for a, b in itertools.combinations(files_of.values(), 2):
        assert not a & b


def test_resume_at_any_batch_sees_the_uninterrupted_batches(files, wav2vec2) -> None:
    schedule = [(0, {"asr": 1.0, "ic": 1.0}), (10, {"ic": 1.0})]  # a stage switch at batch 10
    for rank in (0, 1):
        full = batches(stream(files, wav2vec2, rank=rank, schedule=schedule), 20)
        assert {task for task, _ in full[:10]} == {"asr", "ic"}
        for start in (5, 13):  # 13: after the switch, with whole files of a lane passed over
            resumed = stream(files, wav2vec2, rank=rank, schedule=schedule, start_batch=start)
            assert batches(resumed, 20 - start) == full[start:], (rank, start)


def test_bad_rows_are_skipped_and_counted_by_dataset_file_and_row(tmp_path, wav2vec2) -> None:
    rows = [row(n, 0.5) for n in range(8)]
    rows[2]["audio"] = {"bytes": b"not audio at all", "path": None}
    rows[5]["sentence"] = " "
    rows[7]["audio"] = None
    paths = write_parquet(rows, tmp_path, 2)  # rows 0-3 and 4-7
    kwargs = dict(tasks=("asr",), num_workers=0, world_size=1)
    data = stream(paths, wav2vec2, skip_bad=True, **kwargs)
    got = list(itertools.islice(iter(data), 12))
    bad = {(e.source, e.line, e.reason) for b in got for e in b["bad_items"]}
    assert bad == {
        (f"parquet {paths[0]}", 3, "unreadable"),
        (f"parquet {paths[1]}", 2, "empty_target"),
        (f"parquet {paths[1]}", 4, "empty_audio"),
    }
    assert {i for b in got for i in b["ids"]} == {f"c{n:02d}" for n in (0, 1, 3, 4, 6)}
    with pytest.raises(DataError) as raised:  # skip_bad off: the first bad row stops the stream
        list(itertools.islice(iter(stream(paths, wav2vec2, **kwargs)), 12))
    error = raised.value
    assert (error.source, error.line, error.reason) in bad
    assert str(error).startswith(f"{error.source}:{error.line}: ")


def test_too_few_files_and_bad_mappings_are_refused(files, wav2vec2) -> None:
    with pytest.raises(ValueError, match=r"fewer shards than the 16 lanes .* data files"):
        stream(files, wav2vec2, world_size=8)
    with pytest.raises(ValueError, match=r"train_datasets.asr: .*no column\(s\) \['transcript'\]"):
        hf_shards({"asr": HFSource("parquet", data_files=files, target_column="transcript")})
    with pytest.raises(
        ValueError, match=r"unknown key 'target_col' \(did you mean 'target_column'"
    ):
        ShardedDataModule(wav2vec2, train_datasets={"asr": {"path": "parquet", "target_col": "x"}})
