"""speechllm-train end to end at tiny size: in process, under 2-process DDP, and killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from speechllm.config import compose
from speechllm.models import SpeechLLM
from speechllm.models.pretrained import export_checkpoint
from speechllm.testing import tiny_batches, write_tiny_manifest
from speechllm.training.resume import RunFolderInUse
from speechllm.training.train import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return write_tiny_manifest(tmp_path_factory.mktemp("data"), 48)


def data_overrides(manifest: Path) -> list[str]:
    return [f"data.train_manifests=[{manifest}]", f"data.val_manifests=[{manifest}]"]


def cli(args: list[str], run_dir: Path, **popen) -> subprocess.Popen:
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false"
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "speechllm.cli.train",
            *args,
            f"hydra.run.dir={run_dir}",
            "callbacks.progress.refresh_rate=0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def trainable(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_train_then_export_then_load(manifest: Path, tmp_path: Path) -> None:
    cfg = compose(["experiment=tiny_smoke", *data_overrides(manifest)], output_dir=tmp_path)
    metrics = train(cfg)
    assert {"train/loss", "val/loss", "val/asr/loss", "val/ic/loss"} <= set(metrics)
    ckpts = tmp_path / "checkpoints"
    assert {p.name for p in ckpts.glob("*.ckpt")} >= {"step=3.ckpt", "step=9.ckpt", "last.ckpt"}
    assert (tmp_path / "logs" / "metrics.csv").exists()
    logged = yaml.safe_load((tmp_path / "logs" / "hparams.yaml").read_text())  # resolved config
    assert logged["trainer"]["default_root_dir"] == str(tmp_path)
    assert list(logged["curriculum"]["stages"]) == list(cfg.curriculum.stages)
    out = export_checkpoint(ckpts / "last.ckpt", tmp_path / "export")
    model = SpeechLLM.from_pretrained(out)
    state = trainable(ckpts / "last.ckpt")
    for name, value in model.trainable_state_dict().items():
        torch.testing.assert_close(value, state[f"model.{name}"])
    batch = tiny_batches(1, 2)[0]
    assert (
        len(
            model.generate(
                batch["audio"], batch["audio_lengths"], batch["instructions"], max_new_tokens=4
            )
        )
        == 2
    )
    # a new run in the same folder is refused: it would overwrite this run's checkpoints
    again = ["experiment=tiny_smoke", "seed=1", *data_overrides(manifest)]
    with pytest.raises(RunFolderInUse, match="resume=auto"):
        train(compose([*again, "resume=never"], tmp_path))
    # resume=auto (the default) continues this run instead: it is done, nothing changes
    train(compose(again, tmp_path))
    assert not list(ckpts.glob("*-v1.ckpt"))
    rerun = trainable(ckpts / "last.ckpt")
    assert all(torch.equal(rerun[k], v) for k, v in state.items())


def test_ddp_two_processes_keep_ranks_identical_and_resume(manifest: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    args = [
        "experiment=tiny_smoke",
        "trainer=ddp_cpu",
        *data_overrides(manifest),
        "+callbacks.dump._target_=tests.training.dump_trainable.DumpTrainable",
        f"+callbacks.dump.out_dir={dump}",
    ]
    finish(cli([*args, "trainer.max_steps=6"], tmp_path / "run"))
    rank0, rank1 = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    assert any("lora_" in k for k in rank0)  # stage 2 ran: LoRA attached after DDP was built
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    saved = trainable(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert set(saved) == {f"model.{k}" for k in rank0}  # LoRA + downsampler saved under DDP
    for key in rank0:
        torch.testing.assert_close(saved[f"model.{key}"], rank0[key])
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    finish(cli([*args, f"ckpt_path={ckpt}"], tmp_path / "resumed"))
    assert (
        torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)[
            "global_step"
        ]
        == 9
    )


def test_sigkill_mid_stage_two_then_resume_matches_uninterrupted(manifest, tmp_path) -> None:
    args = [
        "experiment=tiny_smoke",
        *data_overrides(manifest),
        "trainer.max_steps=14",
        "curriculum.stages.lora_warmup.steps=8",
        "callbacks.checkpoint.every_n_train_steps=1",
        "trainer.val_check_interval=100",
    ]
    finish(cli(args, tmp_path / "full"))
    victim = cli(args, tmp_path / "killed")
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    while not (ckpts / "step=6.ckpt").exists():  # stage 2 runs steps 3..10
        assert victim.poll() is None and time.time() < deadline, "run ended before the kill"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    last = trainable_step(ckpts / "last.ckpt")
    assert 3 < last < 11, last  # in stage 2 (steps 3..10)
    finish(cli([*args, f"ckpt_path={ckpts / 'last.ckpt'}"], tmp_path / "killed"))
    expected = trainable(tmp_path / "full" / "checkpoints" / "last.ckpt")
    resumed = trainable(ckpts / "last.ckpt")
    assert trainable_step(ckpts / "last.ckpt") == 14
    assert set(expected) == set(resumed)
    for key, value in expected.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=1e-5)


def trainable_step(ckpt: Path) -> int:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]


def test_last_checkpoint_holds_the_final_step_off_the_save_interval(
    manifest: Path, tmp_path: Path
) -> None:
    """max_steps 8 with saves every 3: the periodic saves end at step 6; last.ckpt has 8."""
    overrides = ["experiment=tiny_smoke", "trainer.max_steps=8", *data_overrides(manifest)]
    train(compose(overrides, output_dir=tmp_path))
    ckpts = tmp_path / "checkpoints"
    assert trainable_step(ckpts / "step=6.ckpt") == 6
    assert trainable_step(ckpts / "last.ckpt") == 8


def test_the_same_command_again_resumes_its_printed_run_folder(
    manifest: Path, tmp_path: Path
) -> None:
    """No hydra.run.dir: the run goes to runs/<name>, said at start and end, and rerunning the
    command continues it instead of starting a new timestamped folder."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "speechllm.cli.train", "experiment=tiny_smoke",
        *data_overrides(manifest), "callbacks.progress.refresh_rate=0", "trainer.max_steps=4",
    ]  # fmt: skip

    def run() -> str:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    first = run()
    assert "run folder: runs/tiny_smoke (a new run" in first
    assert (
        "run folder: runs/tiny_smoke (checkpoints: runs/tiny_smoke/checkpoints/last.ckpt)" in first
    )
    second = run()
    assert "run folder: runs/tiny_smoke (resuming from runs/tiny_smoke/checkpoints/" in second
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["tiny_smoke"]
    noise = ["litlogger", "LeafSpec", "in eval mode at the start", "key_padding_mask", "not empty"]
    assert [n for n in noise if n in first + second] == []
    assert first.count("Seed set to 0") == 1  # Lightning's lines once, not via two handlers


def test_stages_json_covers_every_stage_across_a_resume(manifest: Path, tmp_path: Path) -> None:
    """Stopped at step 5 (mid lora_warmup) and resumed to 9: one row per stage, steps whole."""
    base = ["experiment=tiny_smoke", *data_overrides(manifest)]
    train(compose([*base, "trainer.max_steps=5"], output_dir=tmp_path))
    first = json.loads((tmp_path / "stages.json").read_text())
    assert [(r["stage"], r["steps"]) for r in first] == [("align", 3), ("lora_warmup", 2)]
    train(compose([*base, "trainer.max_steps=9"], output_dir=tmp_path))
    rows = json.loads((tmp_path / "stages.json").read_text())
    assert [(r["stage"], r["steps"]) for r in rows] == [
        ("align", 3),
        ("lora_warmup", 3),
        ("multitask", 3),
    ]
    assert rows[0] == first[0]  # the first process's stage, kept as it was written
    assert rows[1]["seconds"] >= first[1]["seconds"]  # wall time adds up across processes
