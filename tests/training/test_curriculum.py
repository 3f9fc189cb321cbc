from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from speechllm.testing import tiny_batches
from speechllm.training import CurriculumCallback, Stage, StageSummary
from speechllm.training.stage_plan import StagePlan
from tests.training.tiny_world import FixedBatches, make_module, make_trainer

STAGES = [
    {
        "name": "align",
        "trainable": ["downsampler", "layer_weights"],
        "tasks": {"asr": 1.0},
        "steps": 3,
    },
    {
        "name": "lora_warmup",
        "trainable": ["downsampler", "layer_weights", "lora"],
        "tasks": {"asr": 1.0},
        "steps": 3,
    },
    {
        "name": "multitask",
        "trainable": ["downsampler", "layer_weights", "lora"],
        "tasks": {"asr": 1.0, "ic": 0.5},
    },
]


class Recorder(L.Callback):
    """Per optimizer step: stage, loss, params that require grad and params the optimizer
    holds, and the values of every parameter."""

    def __init__(self, curriculum: CurriculumCallback) -> None:
        self.curriculum = curriculum
        self.steps: list[dict[str, Any]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        names = {id(p): n for n, p in pl_module.named_parameters()}
        in_optimizer = {
            names[id(p)] for g in trainer.optimizers[0].param_groups for p in g["params"]
        }
        self.steps.append(
            {
                "stage": self.curriculum.stage.name,
                "loss": float(outputs["loss"]) if outputs else float("nan"),
                "requires_grad": {n for n, p in pl_module.named_parameters() if p.requires_grad},
                "in_optimizer": in_optimizer,
            }
        )


def snapshot(module: L.LightningModule) -> dict[int, torch.Tensor]:
    """Values by parameter identity (peft renames wrapped weights but keeps the tensors)."""
    return {id(p): p.detach().clone() for p in module.parameters()}


def run(stages, steps: int, batches, module=None, extra=(), ckpt_path=None, **trainer_kwargs):
    module = module or make_module()
    curriculum = CurriculumCallback(stages)
    recorder = Recorder(curriculum)
    data = FixedBatches(batches)
    trainer = make_trainer(steps, [curriculum, recorder, *extra], **trainer_kwargs)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return module, curriculum, recorder, data, trainer


def test_each_stage_trains_exactly_its_groups(batches) -> None:
    module = make_module()
    before = snapshot(module)
    module, curriculum, rec, data, trainer = run(STAGES, 9, batches, module)
    assert [s["stage"] for s in rec.steps] == ["align"] * 3 + ["lora_warmup"] * 3 + [
        "multitask"
    ] * 3
    for step in rec.steps:
        assert step["requires_grad"] == step["in_optimizer"]  # nothing stale, nothing missing
    stage1, stage2 = rec.steps[0]["requires_grad"], rec.steps[3]["requires_grad"]
    assert stage1 and all(
        n.startswith(("model.downsampler", "model.encoder.layer_weights")) for n in stage1
    )
    lora = stage2 - stage1
    assert lora and all("lora_" in n for n in lora)
    assert rec.steps[6]["requires_grad"] == stage2
    for name, p in module.named_parameters():
        if name in stage2:
            assert id(p) not in before or not torch.equal(p, before[id(p)]), f"{name} did not train"
            assert p.grad is None or p.grad.abs().sum() > 0
        else:  # encoder and LLM base weights: bit-identical
            assert torch.equal(p, before[id(p)]), f"frozen {name} changed"
    lora_b = [p for n, p in module.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: it trained
    assert curriculum.progress.transitions == [(3, 1), (6, 2)]


def test_lora_absent_in_stage_one_and_optimizer_updates_only_new_set(batches) -> None:
    module, _, rec, _, trainer = run(STAGES[:2], 3, batches)
    assert module.model.llm.attached_adapters == []
    assert not any("lora_" in n for n in rec.steps[-1]["in_optimizer"])
    assert len(trainer.optimizers[0].state) == len(rec.steps[-1]["in_optimizer"])


def test_data_side_gets_the_mixture_schedule(batches) -> None:
    _, _, _, data, _ = run(STAGES, 7, batches)
    assert data.schedules[0] == [(0, {"asr": 1.0}), (3, {"asr": 1.0}), (6, {"asr": 1.0, "ic": 0.5})]
    assert data.schedules[-1] == data.schedules[0]
    assert data.val_tasks == [{"asr"}, {"asr"}, {"asr", "ic"}]  # at setup, then each transition


class Staged:
    """Any module a curriculum can drive: it only records what it is asked."""

    def __init__(self) -> None:
        self.plans: list[StagePlan] = []
        self.attached: list[list[list[str]]] = []

    def begin_stage(self, plan: StagePlan) -> None:
        self.plans.append(plan)

    def attach_adapters(self, plans: Sequence[StagePlan]) -> None:
        self.attached.append([plan.groups for plan in plans])


def test_the_curriculum_talks_only_through_the_declared_protocols() -> None:
    curriculum, module, data = CurriculumCallback(STAGES), Staged(), FixedBatches([])
    sharded = SimpleNamespace(strategy=object(), datamodule=data, max_steps=10)
    curriculum.setup(sharded, module, "fit")
    assert module.attached == [[stage["trainable"] for stage in STAGES]]  # before wrapping
    plan = StagePlan(3, {"lm": 1.0}, None, None, ["downsampler", "layer_weights"], None)
    assert module.plans == [plan]
    assert data.schedules == [curriculum.mixture_schedule()] and data.val_tasks == [{"asr"}]
    with pytest.raises(TypeError, match="drives a StagedModule"):
        curriculum.setup(sharded, L.LightningModule(), "fit")


def test_attached_adapters_stay_frozen_until_a_stage_trains_them() -> None:
    module = make_module()
    module.attach_adapters([StagePlan(groups=["downsampler"]), StagePlan(groups=["lora"])])
    assert module.model.llm.attached_adapters == ["default"]
    assert not any(p.requires_grad for n, p in module.named_parameters() if "lora_" in n)


def test_resume_mid_stage_two_continues_exactly(batches, tmp_path) -> None:
    _, _, full, _, _ = run(STAGES, 8, batches)
    ckpt = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1)
    run(STAGES, 4, batches, extra=[ckpt], enable_checkpointing=True)
    path = next(tmp_path.glob("*step=4.ckpt"))
    saved = torch.load(path, weights_only=True)
    assert saved["state_dict"] and all(
        k.startswith(("model.downsampler", "model.encoder.layer_weights")) or "lora_" in k
        for k in saved["state_dict"]
    )  # trainable weights only: the frozen bases are never written
    module = make_module()  # same frozen bases (they come from their own checkpoints) ...
    for p in module.model.downsampler.parameters():  # ... but trainable weights scrambled
        torch.nn.init.normal_(p)
    module, curriculum, resumed, _, trainer = run(STAGES, 8, batches, module, ckpt_path=path)
    assert trainer.global_step == 8
    assert [s["stage"] for s in resumed.steps] == [s["stage"] for s in full.steps[4:]]
    assert resumed.steps[0]["stage"] == "lora_warmup"
    torch.testing.assert_close(
        torch.tensor([s["loss"] for s in resumed.steps]),
        torch.tensor([s["loss"] for s in full.steps[4:]]),
        atol=1e-6,
        rtol=1e-5,
    )


def test_loss_falls_in_every_stage(batches) -> None:
    stages = [dict(s, steps=30) for s in STAGES[:2]] + [dict(STAGES[2])]
    _, _, rec, _, _ = run(stages, 90, batches, make_module(lr=1e-2))
    for name in ("align", "lora_warmup", "multitask"):
        losses = [s["loss"] for s in rec.steps if s["stage"] == name]
        first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
        assert last < 0.85 * first, f"{name}: {first:.3f} -> {last:.3f}"


def test_stage_validation() -> None:
    with pytest.raises(ValueError, match="steps or a monitor"):
        CurriculumCallback(
            [{"name": "a", "trainable": ["downsampler"], "tasks": {"asr": 1}}, STAGES[2]]
        )
    with pytest.raises(ValueError, match="tasks"):
        Stage("a", ["downsampler"], {"asr": 0.0}, steps=2)


def test_stage_ends_when_the_monitored_metric_plateaus(batches) -> None:
    stages = [dict(STAGES[0], steps=None, monitor="val/loss", patience=2), STAGES[1]]
    module = make_module(lr=0.0)  # nothing improves: the plateau is certain
    _, curriculum, rec, _, _ = run(
        stages, 8, batches, module, limit_val_batches=2, val_check_interval=1
    )
    # validations after steps 1, 2, 3: the first sets the best, two more without improvement
    assert curriculum.progress.transitions == [(3, 1)]
    assert [s["stage"] for s in rec.steps][:4] == ["align"] * 3 + ["lora_warmup"]


def test_stage_summary_reports_every_stage(batches, tmp_path) -> None:
    summary = StageSummary(tail=2)
    _, _, rec, _, _ = run(STAGES, 8, batches, extra=[summary], default_root_dir=tmp_path)
    rows = json.loads((tmp_path / "stages.json").read_text())
    assert [(r["stage"], r["steps"]) for r in rows] == [
        ("align", 3),
        ("lora_warmup", 3),
        ("multitask", 2),
    ]
    multitask = [s["loss"] for s in rec.steps if s["stage"] == "multitask"]
    assert rows[2]["first_loss"] == pytest.approx(multitask[0], abs=1e-4)
    assert rows[2]["final_loss"] == pytest.approx(sum(multitask) / 2, abs=1e-4)


def test_stage_summary_counts_optimizer_steps_and_unscaled_loss(batches, tmp_path) -> None:
    plain, accumulated = tmp_path / "plain", tmp_path / "accumulated"
    run(STAGES, 8, batches, extra=[StageSummary()], default_root_dir=plain)
    run(
        STAGES,
        8,
        batches,
        extra=[StageSummary()],
        default_root_dir=accumulated,
        accumulate_grad_batches=2,
    )
    rows = json.loads((accumulated / "stages.json").read_text())
    assert [(r["stage"], r["steps"]) for r in rows] == [
        ("align", 3),
        ("lora_warmup", 3),
        ("multitask", 2),
    ]
    # the first batch is the same in both runs: Lightning's 1/accumulate scaling is undone
    reference = json.loads((plain / "stages.json").read_text())
    assert rows[0]["first_loss"] == pytest.approx(reference[0]["first_loss"], abs=1e-4)


@pytest.mark.parametrize("every", [1, 2])
def test_task_losses_are_logged_only_in_windows_that_trained_the_task(tmp_path, every) -> None:
    # one intent batch, then three transcription batches, cycled
    ic, *asr = tiny_batches(num_batches=1, tasks=("ic",)) + tiny_batches(num_batches=3)
    logger = CSVLogger(tmp_path, name="", version="")
    run(STAGES[2:], 8, [ic, *asr], logger=logger, log_every_n_steps=every)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))

    def steps(task: str) -> list[int]:
        return [int(r["step"]) for r in rows if r.get(f"train/{task}/loss")]

    if every == 1:  # the ic batch trains steps 0 and 4
        assert steps("ic") == [0, 4] and steps("asr") == [1, 2, 3, 5, 6, 7]
    else:  # windows end at steps 1, 3, 5, 7; ic's are the first and the third
        assert steps("ic") == [1, 5] and steps("asr") == [1, 3, 5, 7]
    assert steps("asr")[-1] in {int(r["step"]) for r in rows if r.get("train/loss")}


CTC_STAGES = [
    {
        "name": "align",
        "trainable": ["downsampler", "layer_weights", "ctc"],
        "tasks": {"asr": 1.0},
        "objective": {"ctc": 1.0},
        "steps": 20,
    },
    {
        "name": "lora_warmup",
        "trainable": ["downsampler", "layer_weights", "lora", "ctc"],
        "tasks": {"asr": 1.0},
        "objective": {"lm": 1.0, "ctc": 0.3},
        "lr": {"downsampler": 1e-4, "lora": 5e-3},
        "steps": 2,
    },
]


def test_ctc_stage_trains_without_the_llm_then_lm_stage_uses_per_group_rates(batches) -> None:
    module = make_module(lr=1e-2, ctc=True)
    llm_calls = []
    module.model.llm.register_forward_hook(lambda *_: llm_calls.append(1))
    module, curriculum, rec, _, trainer = run(CTC_STAGES, 22, batches, module)
    align = [s for s in rec.steps if s["stage"] == "align"]
    assert len(align) == 20 and len(llm_calls) == 2  # the align stage never ran the LLM
    assert align[0]["requires_grad"] == align[0]["in_optimizer"]
    assert any(n.startswith("model.ctc.") for n in align[0]["requires_grad"])
    losses = [s["loss"] for s in align]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    names = {id(p): n for n, p in module.named_parameters()}
    rates = {names[id(p)]: g["lr"] for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert {rates[n] for n in rates if n.startswith("model.downsampler.")} == {1e-4}
    assert {rates[n] for n in rates if "lora_" in n} == {5e-3}
    assert {rates[n] for n in rates if n.startswith("model.ctc.")} == {1e-2}  # the optimizer's


def test_stage_objective_and_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="objective"):
        Stage("a", ["downsampler"], {"asr": 1.0}, steps=2, objective={"mse": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        Stage("a", ["downsampler"], {"asr": 1.0}, steps=2, objective={"kd": -1.0})
    kd = Stage("a", ["lora"], {"asr": 1.0}, steps=2, objective={"lm": 1.0, "kd": 0.5})
    assert kd.objective == {"lm": 1.0, "kd": 0.5}
    with pytest.raises(ValueError, match="objective needs a weight"):
        Stage("a", ["downsampler"], {"asr": 1.0}, steps=2, objective={"ctc": 0.0})
    with pytest.raises(ValueError, match="does not train"):
        Stage("a", ["downsampler"], {"asr": 1.0}, steps=2, lr={"lora": 1e-3})
    assert Stage("a", ["ctc"], {"asr": 1.0}, steps=2, objective={"ctc": 1.0}).objective == {
        "lm": 0.0,
        "ctc": 1.0,
    }
    summary = Stage("a", ["downsampler"], {"gr": 1.0}, steps=2, objective={"summary": 1.0})
    assert summary.objective == {"lm": 0.0, "summary": 1.0}


def test_ctc_group_needs_an_aligner(batches) -> None:
    with pytest.raises(ValueError, match="no CTC aligner"):
        run(CTC_STAGES[:1], 1, batches)
