"""Training straight from a Hugging Face dataset streamed file by file (``data=hf_stream``),
stopped and resumed: the resumed steps see the batches an uninterrupted run saw."""

from __future__ import annotations

from pathlib import Path

from speechllm.config import compose
from speechllm.data.manifest import read_manifests
from speechllm.testing import PARITY, write_tiny_manifest
from speechllm.training.train import train
from tests.data.test_hf_stream import write_parquet
from tests.training.test_train_shards import steps_seen


def test_trains_from_a_streamed_dataset_and_resumes_with_the_same_batches(tmp_path: Path) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 32)
    args = [
        "experiment=tiny_smoke",
        "data=hf_stream",
        f"data.val_manifests=[{manifest}]",
        "data.num_workers=2",
        "data.skip_bad=false",
        "trainer.val_check_interval=100",
        "callbacks.checkpoint.every_n_train_steps=1",
        "+callbacks.batches._target_=tests.training.dump_batches.DumpBatches",
    ]
    ids = {}
    for task in ("asr", "ic"):  # each task its own dataset of 4 parquet files
        entries = [e for e in read_manifests([manifest]) if e.task == task]
        ids[task] = {e.id for e in entries}
        rows = [
            {"audio": {"bytes": Path(e.audio).read_bytes()}, "text": e.target, "utt": e.id}
            for e in entries
        ]
        files = write_parquet(rows, tmp_path / "hf" / task, 4)
        prefix = "data" if task == "asr" else "+data"  # the preset's entry is asr
        args += [
            f"{prefix}.train_datasets.{task}.path=parquet",
            f"{prefix}.train_datasets.{task}.data_files=[{','.join(files)}]",
            f"{prefix}.train_datasets.{task}.id_column=utt",
        ]
    args.append(f"+data.train_datasets.ic.fields={{labels: [{','.join(PARITY)}]}}")

    def run(dump: str, steps: int, folder: str) -> None:
        overrides = [f"trainer.max_steps={steps}", f"+callbacks.batches.out_dir={tmp_path / dump}"]
        train(compose([*args, *overrides], output_dir=tmp_path / folder))

    run("full", 8, "full_run")  # steps 0-5 asr only; 6-7 the multitask mixture
    run("stopped", 4, "run")
    run("resumed", 8, "run")  # resume=auto: from the stopped run's step-4 checkpoint
    full, resumed = steps_seen(tmp_path / "full", 0), steps_seen(tmp_path / "resumed", 0)
    assert sorted(full) == list(range(8))
    assert sorted(resumed) == [4, 5, 6, 7]
    assert {s: full[s] for s in resumed} == resumed
    tasks = [{t for t, utts in ids.items() for i in full[s].split(",") if i in utts} for s in full]
    assert tasks[:6] == [{"asr"}] * 6 and {"ic"} in tasks[6:]
