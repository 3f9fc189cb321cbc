"""SpeechLLMModule: the thin LightningModule around a SpeechLLM."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch.optim import Optimizer

from speechllm.models.groups import TrainableGroups
from speechllm.models.pretrained import ModelRecipe, trained_weights
from speechllm.models.speech_llm import SpeechLLM, SpeechLLMOutput
from speechllm.tasks import TASKS
from speechllm.training.optim import (
    DEFAULT_OPTIMIZER,
    DEFAULT_SCHEDULER,
    OptimizerFactory,
    SchedulerFactory,
    decay_groups,
    optimization,
)
from speechllm.training.rng import gather_rng_states, restore_rank_rng, seed_rank
from speechllm.training.sharding import shard
from speechllm.training.stage_plan import StagedModule, StagePlan

log = logging.getLogger(__name__)


def transcripts(batch: dict[str, Any]) -> list[str]:
    """Each item's transcript: the target of a transcript task, else the batch's
    ``transcripts`` entry (the recording's, when the data module knows it), else ``""``."""
    known = batch.get("transcripts") or [""] * len(batch["tasks"])
    return [
        target if TASKS[task].scoring == "transcript" else text
        for task, target, text in zip(batch["tasks"], batch["targets"], known, strict=True)
    ]


class SpeechLLMModule(L.LightningModule, StagedModule):
    """Steps, logging and optimizers; the model, data and curriculum live elsewhere.

    Checkpoints hold only the trainable parts (downsampler, layer weights, adapters), so a
    checkpoint of a 7B-LLM run stays megabytes; the adapters present are recorded so that
    resuming re-attaches them before the weights are loaded.

    Args:
        model: the SpeechLLM.
        optimizer: factory over parameter groups (Hydra ``_partial_``), AdamW by default.
        scheduler: factory ``(optimizer, total_steps=...)`` (Hydra ``_partial_``); its horizon
            is the current curriculum stage's length, else ``trainer.max_steps``.
        trainable: groups to train when no curriculum sets them.
        weight_decay: applied to matrices only (not norms, biases or layer weights).
        max_nonfinite_steps: consecutive steps with a non-finite loss or gradient that are
            skipped (and counted in ``train/skipped_steps``) before the run stops.
        recipe: how ``model`` was built (its config node and seed), written into every
            checkpoint so that ``speechllm-export``/``-eval`` rebuild it without the run config.
        init_from: a training checkpoint or export folder whose ``init_groups`` weights the
            model starts from (step two of two-step PEFT keeps step one's alignment: its
            downsampler and layer weights). A resumed run loads its own checkpoint over them.
        init_groups: the module groups ``init_from`` gives.
    """

    def __init__(
        self,
        model: SpeechLLM,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        trainable: list[str] | None = None,
        weight_decay: float = 0.01,
        max_nonfinite_steps: int = 10,
        recipe: ModelRecipe | None = None,
        init_from: str | None = None,
        init_groups: Sequence[str] = ("downsampler", "layer_weights"),
    ) -> None:
        super().__init__()
        if init_from is not None:
            model.load_group_weights(trained_weights(init_from), init_groups)
            log.info("%s start from %s", ", ".join(init_groups), init_from)
        self.model = model
        self.optimizer_factory = optimizer or DEFAULT_OPTIMIZER
        self.scheduler_factory = scheduler or DEFAULT_SCHEDULER
        self.weight_decay = weight_decay
        self.max_nonfinite_steps = max_nonfinite_steps
        self.plan = StagePlan()
        self.recipe = recipe
        self.skipped_steps = 0
        self._nonfinite_run = 0
        self._tasks = list(TASKS)
        self._task_sums: dict[str, torch.Tensor] = {}
        self._sharded = False
        self._resume_rng: list[dict[str, Any]] | dict[str, Any] | None = None
        self.strict_loading = False  # frozen bases are not in checkpoints; checked by hand
        self.model.set_trainable(list(trainable or ["downsampler", "layer_weights"]))

    def setup(self, stage: str) -> None:
        # after the process group exists and before a checkpoint's states are restored
        seed_rank(self.trainer.global_rank)

    def on_train_start(self) -> None:
        # A checkpoint's random state is restored last, after what resuming itself draws
        # (adapters attached again, loaders' iterators), so the next step draws what the
        # uninterrupted run drew.
        if self._resume_rng is not None:
            trainer = self.trainer
            restore_rank_rng(self._resume_rng, trainer.global_rank, trainer.world_size)
            self._resume_rng = None

    def configure_model(self) -> None:
        """``trainer=fsdp`` (Lightning's ``ModelParallelStrategy``): FSDP2, one unit per
        transformer block over every rank (no tensor parallelism); see ``training/sharding``."""
        strategy = self.trainer.strategy
        if isinstance(strategy, ModelParallelStrategy) and not self._sharded:
            shard(self.model)
            self._sharded = True

    # ---------------------------------------------------------------- curriculum
    def begin_stage(self, plan: StagePlan) -> None:
        """Train what ``plan`` names from now on (see :class:`StagedModule`)."""
        self.model.set_trainable(plan.groups, plan.active_adapters)
        self.plan = plan

    def attach_adapters(self, plans: Sequence[StagePlan]) -> None:
        """Attach every adapter ``plans`` train or run (see :class:`StagedModule`); a new
        adapter's B starts at zero, so outputs do not change."""
        llm = self.model.llm
        for plan in plans:
            trained = TrainableGroups.parse(plan.groups).adapter_names(llm.adapter_configs)
            for name in [*trained, *(plan.active_adapters or [])]:
                if name not in llm.attached_adapters:
                    llm.attach_adapter(name)

    # ---------------------------------------------------------------- steps
    def forward(self, batch: dict[str, Any]) -> SpeechLLMOutput:
        batch = {**batch, "transcripts": transcripts(batch)}
        return self.model(**batch, objective=self.plan.objective)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch["ids"]:  # every item was bad and skipped: a zero step keeps DDP in step
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        loss = self._step(batch, "train")
        # Every rank must agree, or DDP would wait forever for a rank that skipped.
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True)
        if not finite:
            self._skip("loss")
            return None
        return loss

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not grads:  # the step was skipped in training_step: there is nothing to update
            return
        finite = bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            self._skip("gradient")
            for group in optimizer.param_groups:  # AdamW leaves params without grads alone
                for p in group["params"]:
                    p.grad = None
            return
        self._nonfinite_run = 0

    def _skip(self, what: str) -> None:
        self.skipped_steps += 1
        self._nonfinite_run += 1
        self.log("train/skipped_steps", float(self.skipped_steps), reduce_fx="max")
        if self._nonfinite_run > self.max_nonfinite_steps:
            raise RuntimeError(
                f"{self._nonfinite_run} steps in a row had a non-finite {what} (limit "
                f"max_nonfinite_steps={self.max_nonfinite_steps}); lower the learning rate or "
                "check the data. The last good checkpoint is untouched."
            )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        return self._step(batch, "val") if batch["ids"] else None

    def _step(self, batch: dict[str, Any], split: str) -> torch.Tensor:
        out = self(batch)
        show = split == "train" and self.trainer.progress_bar_callback is not None
        self.log(
            f"{split}/loss",
            out.loss,
            batch_size=len(batch["tasks"]),
            prog_bar=show,
            sync_dist=split == "val",
        )
        if len(out.parts) > 1:  # several objectives weighed: each one's own loss
            for name, value in out.parts.items():
                self.log(
                    f"{split}/{name}_loss",
                    value,
                    batch_size=len(batch["tasks"]),
                    sync_dist=split == "val",
                )
        # Per-task token sums, logged per window rather than per step: one self.log per task
        # per step costs more than the step itself on a tiny model.
        sums = self._task_sums.setdefault(split, out.loss.new_zeros(len(self._tasks), 2))
        for i, task in enumerate(batch["tasks"]):
            sums[self._tasks.index(task)] += torch.stack(
                [out.item_loss_sum[i].detach(), out.item_tokens[i].to(sums.dtype)]
            )
        return out.loss

    def on_train_batch_end(self, outputs: Any, batch: dict[str, Any], batch_idx: int) -> None:
        # once per logging window, after the last batch its final optimizer step accumulated
        window_end = (batch_idx + 1) % self.trainer.accumulate_grad_batches == 0
        if window_end and self.global_step % self.trainer.log_every_n_steps == 0:
            self._log_task_losses("train")

    def on_validation_epoch_end(self) -> None:
        self._log_task_losses("val")

    def _log_task_losses(self, split: str) -> None:
        sums = self._task_sums.pop(split, None)
        if sums is None:
            return
        if split == "val":  # every rank holds a row per registered task: one all-reduce
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        losses = {
            f"{split}/{task}/loss": loss / tokens
            for task, (loss, tokens) in zip(self._tasks, sums.tolist(), strict=True)
            if tokens > 0
        }
        if split == "val":
            for name, value in losses.items():
                self.log(name, value, sync_dist=False)
            return
        # Straight to the loggers: through self.log, Lightning would log a task's last value
        # again in every later window that has no batch of the task.
        for logger in self.loggers:  # at the step Lightning logs this window's train/loss
            logger.log_metrics(losses, step=self.global_step - 1)

    # ---------------------------------------------------------------- optimizers
    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("no trainable parameters: check the curriculum's trainable groups")
        horizon = self.plan.horizon or self.trainer.max_steps
        if horizon is None or horizon < 1:
            raise ValueError("set trainer.max_steps or give every curriculum stage its steps")
        scheduler = self.scheduler_factory
        if self.plan.warmup_steps is not None:
            scheduler = partial(scheduler, warmup_steps=self.plan.warmup_steps)
        return optimization(self._param_groups(params), self.optimizer_factory, scheduler, horizon)

    def _param_groups(self, params: list[torch.nn.Parameter]) -> list[dict[str, Any]]:
        """Weight-decay groups, split further by the stage's per-group learning rates."""
        lr = self.plan.lr
        if lr is None:
            return decay_groups(params, self.weight_decay)
        if not isinstance(lr, dict):
            return [{**g, "lr": float(lr)} for g in decay_groups(params, self.weight_decay)]
        unknown = set(lr) - set(self.plan.groups)
        if unknown:
            raise ValueError(f"lr names {sorted(unknown)}, not trainable in this stage")
        wanted = {id(p) for p in params}
        groups, seen = [], set()
        for name in self.plan.groups:
            mine = [p for p in self.model.group_parameters(name) if id(p) in wanted - seen]
            seen |= {id(p) for p in mine}
            extra = {"lr": float(lr[name])} if name in lr else {}
            groups += [{**g, **extra} for g in decay_groups(mine, self.weight_decay)]
        rest = [p for p in params if id(p) not in seen]
        return groups + decay_groups(rest, self.weight_decay)

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = {f"model.{k}" for k in self.model.trainable_state_dict()}
        state = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        broken = [k for k, v in state.items() if not torch.isfinite(v).all()]
        if broken:
            raise RuntimeError(
                f"refusing to write a checkpoint with non-finite weights: {broken[:3]}"
            )
        checkpoint["state_dict"] = state
        checkpoint["speechllm"] = {
            "adapters": self.model.llm.attached_adapters,
            "config": self.recipe.to_dict() if self.recipe else None,
            "skipped_steps": self.skipped_steps,
            "rng": gather_rng_states(),  # every rank's, though only rank 0 writes
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        extra = checkpoint.get("speechllm", {})
        self.skipped_steps = extra.get("skipped_steps", 0)
        self._resume_rng = extra.get("rng")
        if "state_dict" not in checkpoint:  # a sharded strategy loaded the shards in place
            return
        prefix = "model."
        state = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items()}
        self.model.load_trainable_state_dict(state, extra.get("adapters", []))
