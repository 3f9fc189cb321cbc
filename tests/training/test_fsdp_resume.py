"""``trainer=fsdp`` killed and requeued: 2 CPU processes over gloo, checkpoints that are folders
of shards, ``resume=auto`` continuing to the weights of an uninterrupted run."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from speechllm.models import SpeechLLM
from speechllm.models.pretrained import export_checkpoint
from speechllm.testing import write_tiny_manifest
from speechllm.training.checkpointing import PARTIAL
from speechllm.training.resume import resume_point
from tests.training.test_train_cli import cli, data_overrides, finish

FSDP_CPU = [
    "trainer=fsdp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.precision=32-true",
    "+trainer.strategy.process_group_backend=gloo",
]


def sharded_trainable(folder: Path, tmp: Path) -> dict[str, torch.Tensor]:
    """The trainable weights of a sharded checkpoint folder, gathered into one dict."""
    out = tmp / f"{folder.parent.parent.name}-{folder.name}.pt"
    dcp_to_torch_save(folder, out)
    return torch.load(out, weights_only=True)["state_dict"]


def meta_step(folder: Path) -> int:
    return torch.load(folder / "meta.pt", weights_only=True)["global_step"]


def test_fsdp_killed_then_resume_auto_matches_uninterrupted(tmp_path: Path) -> None:
    manifest = write_tiny_manifest(tmp_path / "data", 24)
    args = [
        "experiment=tiny_smoke",
        *FSDP_CPU,
        *data_overrides(manifest),
        "trainer.max_steps=8",
        "callbacks.checkpoint.every_n_train_steps=1",
        "trainer.val_check_interval=100",
    ]
    finish(cli(args, tmp_path / "full"))
    run = tmp_path / "killed"
    killer = ["+callbacks.kill._target_=tests.training.kill_at.KillAt", "+callbacks.kill.step=5"]
    victim = cli([*args, *killer], run, start_new_session=True)
    out, _ = victim.communicate(timeout=240)
    assert victim.returncode == -signal.SIGKILL, out[-3000:]
    ckpts = run / "checkpoints"
    assert (ckpts / "last.ckpt").is_dir() and meta_step(ckpts / "last.ckpt") == 5
    assert not list(ckpts.glob(f"*{PARTIAL}*"))  # every save was renamed into place
    assert resume_point(str(run)).path.endswith(".ckpt")  # folders are found and load
    # a shard lost from the newest folder: resume=auto falls back to step=5.ckpt, the same step
    next((ckpts / "last.ckpt").glob("*.distcp")).unlink()
    point = resume_point(str(run))
    assert Path(point.path).name == "step=5.ckpt" and point.step == 5
    shutil.copytree(ckpts / "step=5.ckpt", ckpts / f"step=6.ckpt{PARTIAL}0000")  # a killed save
    finish(cli(args, run))  # the requeued command, verbatim
    assert meta_step(ckpts / "last.ckpt") == 8
    assert not list(ckpts.glob(f"*{PARTIAL}*"))
    expected = sharded_trainable(tmp_path / "full" / "checkpoints" / "last.ckpt", tmp_path)
    resumed = sharded_trainable(ckpts / "last.ckpt", tmp_path)
    assert set(expected) == set(resumed) and any("lora_" in k for k in expected)
    for key, value in expected.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=1e-5, msg=key)
    # speechllm-export reads a sharded folder too, and writes its export whole
    model = SpeechLLM.from_pretrained(export_checkpoint(ckpts / "last.ckpt", tmp_path / "export"))
    for key, value in model.trainable_state_dict().items():
        torch.testing.assert_close(value, expected[f"model.{key}"], msg=key)
    assert not list(tmp_path.glob(f"export{PARTIAL}*"))
