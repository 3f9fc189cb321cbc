"""Loggers: options combine (``logger=[csv,tensorboard]``), a missing package fails before
anything is built naming its extra, TensorBoard writes event files, and W&B keeps one run per
run folder across restarts (offline, no network)."""

from __future__ import annotations

import re
import struct
import threading
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import speechllm.training.train
from speechllm.config import ConfigError, check_loggers, compose
from speechllm.training import loggers
from speechllm.training.csv_logger import CSVLogger
from speechllm.training.trainer import build_trainer

ROOT = Path(__file__).resolve().parents[2]


def test_readme_logger_lists_compose_in_order(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    shown = sorted(set(re.findall(r"logger=\[[a-z,]+\]", readme)))
    assert "logger=[csv,tensorboard]" in shown and "logger=[csv,wandb]" in shown
    for override in shown:
        cfg = compose([override], output_dir=tmp_path)
        assert list(cfg.logger) == override.split("[")[1].rstrip("]").split(",")
    assert not compose(["logger=none"], output_dir=tmp_path).logger


@pytest.mark.parametrize("option, extra", [("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_a_missing_logger_package_fails_before_anything_is_built(
    option: str, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loggers, "_installed", lambda package: False)
    monkeypatch.setattr(speechllm.training.train, "build", lambda cfg: pytest.fail("built a model"))
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("")
    data = [f"data.train_manifests=[{manifest}]", f"data.val_manifests=[{manifest}]"]
    cfg = compose([f"logger=[csv,{option}]", *data], output_dir=tmp_path / "run")
    with pytest.raises(ConfigError) as caught:
        speechllm.training.train.train(cfg)
    message = str(caught.value)
    assert message.startswith(f"logger.{option}: ") and "\n" not in message
    assert f"pip install 'speechllm[{extra}]'" in message
    check_loggers(compose(["logger=csv"]))  # ours needs nothing more


def test_tensorboard_and_csv_log_side_by_side(tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto import event_pb2

    cfg = compose(["logger=[csv,tensorboard]"], output_dir=tmp_path)
    check_loggers(cfg)
    trainer = build_trainer(cfg)
    assert [type(lg) for lg in trainer.loggers] == [CSVLogger, loggers.TensorBoardLogger]
    for lg in trainer.loggers:  # as speechllm.training.train.build and a fit do
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        lg.log_metrics({"train/loss": 1.5}, step=3)
        lg.finalize("success")
    assert (tmp_path / "logs" / "metrics.csv").read_text().splitlines()[1].startswith("3,1.5,")
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    scalars = {
        (value.tag, event.step, round(value.simple_value, 3))
        for event in map(event_pb2.Event.FromString, tf_records(events.read_bytes()))
        for value in event.summary.value
    }
    assert ("train/loss", 3, 1.5) in scalars


def tf_records(data: bytes) -> list[bytes]:
    """The records of a TFRecord file: length (u64), its CRC, the bytes, their CRC."""
    records, at = [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at : at + 8])
        records.append(data[at + 12 : at + 12 + length])
        at += 12 + length + 4
    return records


def test_wandb_run_id_belongs_to_the_run_folder(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    run = tmp_path / "runs" / "a"
    first = build_trainer(compose(["logger=wandb"], output_dir=run)).loggers[0]
    again = build_trainer(compose(["logger=wandb"], output_dir=run)).loggers[0]  # requeued
    other = build_trainer(compose(["logger=wandb"], output_dir=tmp_path / "runs" / "b"))
    assert isinstance(first, loggers.WandbLogger)
    assert first._wandb_init["resume"] == "allow" and first._offline
    assert first.version == again.version == (run / "wandb" / "run_id").read_text().strip()
    assert re.fullmatch(r"[a-z0-9]{8}", first.version)
    assert other.loggers[0].version != first.version
    pinned = compose(["logger=wandb", "logger.wandb.id=my-run"], output_dir=tmp_path / "c")
    assert build_trainer(pinned).loggers[0].version == "my-run"


def test_a_resumed_offline_run_writes_under_the_same_wandb_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")  # and Lightning's "dryrun" is undone after
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "home" / var))
    run = tmp_path / "run"
    for start in range(2):  # the first start, then the one after a preemption
        logger = build_trainer(compose(["logger=wandb"], output_dir=run)).loggers[0]
        logger.log_metrics({"train/loss": 1.0}, step=start)
        wandb.finish()
    run_id = (run / "wandb" / "run_id").read_text().strip()
    pieces = sorted((run / "wandb").glob("offline-run-*"))
    # wandb suffixes "-1" to a folder whose name (start second and id) is taken: both starts
    # can fall in one second
    named = [re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", p.name) for p in pieces]
    assert len(pieces) == 2 and all(named), [p.name for p in pieces]


def test_every_rank_reads_the_one_run_id(tmp_path: Path) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def rank() -> None:
        barrier.wait()
        ids.append(loggers.run_id(tmp_path))

    threads = [threading.Thread(target=rank) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 8
    assert [p.name for p in (tmp_path / "wandb").iterdir()] == ["run_id"]  # no temporary left
