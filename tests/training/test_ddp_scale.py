"""2-process DDP on CPU: a task mixture with a classification head trains without
``find_unused_parameters``, and each rank's random stream (dropout on) survives resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from speechllm.synth import SynthConfig, generate
from tests.training.test_train_cli import cli, finish, trainable


@pytest.fixture(scope="module")
def clinical(tmp_path_factory) -> tuple[Path, list[str]]:
    """The clinical recipe's step two under DDP, 6 steps, checkpoints every 3, LoRA dropout."""
    root = tmp_path_factory.mktemp("clinical")
    data = root / "data"
    generate(SynthConfig(out=str(data), domain="clinical", n_train=8, n_dev=2, n_test=2))
    args = [
        "experiment=clinical_two_step",
        "two_step.domain=none",  # no step-one adapter to load
        "trainer=ddp_cpu",
        f"paths.data_dir={data}",
        "lora.lora_dropout=0.3",
        "trainer.max_steps=6",
        "trainer.val_check_interval=3",
        "trainer.limit_val_batches=1",
        "callbacks.checkpoint.every_n_train_steps=3",
        "module.scheduler.warmup_steps=1",
        "+callbacks.dump._target_=tests.training.dump_trainable.DumpTrainable",
    ]
    finish(cli([*args, f"+callbacks.dump.out_dir={root / 'dump'}"], root / "full"))
    return root, args


def test_ddp_trains_a_head_and_a_generated_task_without_unused_parameter_search(clinical) -> None:
    root, _ = clinical
    rank0 = load_file(root / "dump" / "rank0.safetensors")
    rank1 = load_file(root / "dump" / "rank1.safetensors")
    assert any(k.startswith("heads.symptoms.") for k in rank0)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key


def test_each_rank_resumes_its_own_random_stream(clinical, tmp_path: Path) -> None:
    root, args = clinical
    ckpts = root / "full" / "checkpoints"
    states = torch.load(ckpts / "step=3.ckpt", weights_only=True)["speechllm"]["rng"]
    assert len(states) == 2 and not torch.equal(states[0]["torch"], states[1]["torch"])
    finish(
        cli(
            # quoted for Hydra: the file name holds a '='
            [*args, f"+callbacks.dump.out_dir={tmp_path}", f"ckpt_path='{ckpts / 'step=3.ckpt'}'"],
            tmp_path / "resumed",
        )
    )
    expected, resumed = (
        trainable(ckpts / "last.ckpt"),
        trainable(tmp_path / "resumed" / "checkpoints" / "last.ckpt"),
    )
    assert set(expected) == set(resumed)
    for key, value in expected.items():  # dropout drew the same masks on each rank
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=1e-5, msg=key)
