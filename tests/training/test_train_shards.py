"""Training from lhotse Shar shards under 2-process DDP with 2 workers each, killed and resumed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from speechllm.importers.shards import cuts_from_manifests, write_shards
from speechllm.testing import write_tiny_manifest
from tests.training.test_train_cli import cli, finish, trainable_step


def steps_seen(dump: Path, rank: int) -> dict[int, str]:
    """Batch ids by step (the last record of a step: a resumed run replays none)."""
    lines = (dump / f"rank{rank}.tsv").read_text().splitlines()
    return {int(step): ids for step, ids in (line.split("\t") for line in lines)}


def test_ddp_sharded_stream_killed_and_resumed_sees_the_same_batches(tmp_path: Path) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 48)
    write_shards(cuts_from_manifests([manifest]), tmp_path / "shards", shard_size=4)
    args = [
        "experiment=tiny_smoke",
        "trainer=ddp_cpu",
        "data=shar",
        f"data.train_shards={tmp_path / 'shards'}",
        f"data.val_manifests=[{manifest}]",
        "data.num_workers=2",
        "data.max_batch_seconds=8.0",
        "trainer.max_steps=10",
        "trainer.val_check_interval=100",
        "callbacks.checkpoint.every_n_train_steps=1",
        "+callbacks.batches._target_=tests.training.dump_batches.DumpBatches",
    ]
    finish(cli([*args, f"+callbacks.batches.out_dir={tmp_path / 'full'}"], tmp_path / "run"))
    victim = cli(
        [*args, f"+callbacks.batches.out_dir={tmp_path / 'killed'}"],
        tmp_path / "killed_run",
        start_new_session=True,  # the kill takes rank 1 and the loader workers too
    )
    ckpts = tmp_path / "killed_run" / "checkpoints"
    deadline = time.time() + 300
    while not (ckpts / "step=5.ckpt").exists():  # inside stage 2 (steps 3..5) or just after
        assert victim.poll() is None and time.time() < deadline, "run ended before the kill"
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    stopped = trainable_step(ckpts / "last.ckpt")
    assert 3 < stopped < 10, stopped  # last.ckpt may trail step=5.ckpt by one save
    finish(
        cli(
            [
                *args,
                f"+callbacks.batches.out_dir={tmp_path / 'resumed'}",
                f"ckpt_path={ckpts / 'last.ckpt'}",
            ],
            tmp_path / "killed_run",
        )
    )
    for rank in (0, 1):
        full, resumed = steps_seen(tmp_path / "full", rank), steps_seen(tmp_path / "resumed", rank)
        assert sorted(full) == list(range(10))
        assert sorted(resumed) == list(range(stopped, 10))
        assert {s: full[s] for s in resumed} == resumed, rank
    ranks = [steps_seen(tmp_path / "full", r) for r in (0, 1)]
    for step in (0, 1):  # each worker's first batch: every lane is in its first epoch's shards
        assert not set(ranks[0][step].split(",")) & set(ranks[1][step].split(","))
