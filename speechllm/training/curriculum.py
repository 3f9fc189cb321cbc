"""The training curriculum: stages that change what trains and which tasks are drawn."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from speechllm.data.datamodule import CurriculumData
from speechllm.training.stage_plan import StagedModule, StagePlan

log = logging.getLogger(__name__)

OBJECTIVES = ("lm", "ctc", "summary", "kd")
"""The losses a stage can weigh (:meth:`SpeechLLM.forward`)."""


@dataclass
class Stage:
    """One curriculum stage.

    Args:
        name: shown in logs and stored in checkpoints.
        trainable: groups that train: ``downsampler``, ``layer_weights``, ``lora`` (every
            declared adapter) or ``lora.<name>``.
        tasks: task mixture weights drawn by the data side (``{"asr": 1.0}``).
        steps: optimizer steps in this stage; ``None`` runs until ``monitor`` stops
            improving, or to the end of training for the last stage.
        monitor: metric whose plateau ends the stage (``val/loss``), checked at validation.
        patience: validations without improvement before the stage ends.
        mode: ``min`` or ``max`` for ``monitor``.
        active_adapters: adapters that run in this stage (default: every attached one).
        objective: loss weights: ``lm`` (the LLM's next-token loss), ``ctc`` (CTC over the
            LLM's vocabulary on transcript items, no LLM pass when ``lm`` and ``kd`` are 0;
            the model needs ``ctc=``), ``summary`` (utterance embeddings toward the LLM's
            embeddings of their task's answer, no LLM pass either; the model needs
            ``summary_align=``) and ``kd`` (KL to the frozen text LLM reading the
            transcript instead of the audio, :meth:`SpeechLLM.distill`). ``{ctc: 1.0}``
            aligns the downsampler in minutes where the LM loss through a frozen LLM takes
            hours; ``{lm: 1.0, ctc: 0.3}`` keeps it as an auxiliary; ``{lm: 1.0, kd: 1.0}``
            keeps the answers close to the text LLM's.
        lr: the stage's learning rate, or one per trainable group (``{downsampler: 1e-3,
            lora: 3e-4}``); default: the optimizer's.
        warmup_steps: the stage's warm-up (default: the scheduler's); a short stage wants a
            short one.
    """

    name: str
    trainable: list[str]
    tasks: dict[str, float]
    steps: int | None = None
    monitor: str | None = None
    patience: int = 3
    mode: str = "min"
    active_adapters: list[str] | None = None
    objective: dict[str, float] = field(default_factory=lambda: {"lm": 1.0})
    lr: float | dict[str, float] | None = None
    warmup_steps: int | None = None

    def __post_init__(self) -> None:
        self.trainable, self.tasks = list(self.trainable), dict(self.tasks)
        self.objective = {"lm": 0.0, **self.objective}  # named alone, ctc means no LM
        if set(self.objective) - set(OBJECTIVES) or any(w < 0 for w in self.objective.values()):
            raise ValueError(
                f"stage {self.name!r}: objective takes non-negative weights for "
                f"{', '.join(OBJECTIVES)}, got {self.objective}"
            )
        if not any(self.objective.values()):
            raise ValueError(f"stage {self.name!r}: objective needs a weight > 0")
        if isinstance(self.lr, Mapping):
            self.lr = dict(self.lr)
            unknown = set(self.lr) - set(self.trainable)
            if unknown:
                raise ValueError(
                    f"stage {self.name!r}: lr names {sorted(unknown)}, which it does not train "
                    f"({self.trainable})"
                )
        if not self.trainable:
            raise ValueError(f"stage {self.name!r}: trainable must name at least one group")
        if (
            not self.tasks
            or any(w < 0 for w in self.tasks.values())
            or not any(w > 0 for w in self.tasks.values())
        ):
            raise ValueError(f"stage {self.name!r}: tasks needs non-negative weights, one > 0")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"stage {self.name!r}: steps must be >= 1, got {self.steps}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"stage {self.name!r}: mode must be min or max, got {self.mode!r}")

    def plan(self, horizon: int | None = None) -> StagePlan:
        """What this stage asks of the module, over ``horizon`` optimizer steps."""
        return StagePlan(
            horizon,
            self.objective,
            self.lr,
            self.warmup_steps,
            self.trainable,
            self.active_adapters,
        )


@dataclass
class _Progress:
    index: int = 0
    start_step: int = 0
    best: float | None = None
    bad_evals: int = 0
    transitions: list[tuple[int, int]] = field(default_factory=list)  # (step, stage index)


class CurriculumCallback(L.Callback):
    """Applies the stages: trainable groups, optimizer, task mixture; survives resume.

    It talks to the module through :class:`StagedModule` and to the data module through
    :class:`CurriculumData`. On a transition the module begins the new stage (attaching any
    adapter it needs, setting ``requires_grad``), DDP is re-wrapped (:func:`rewrap_ddp`) and
    the optimizer and schedule are rebuilt from scratch, so no stale state leaks from the
    previous stage. The stage and its progress are saved in the checkpoint;
    the module re-attaches adapters before loading weights, this callback restores the
    trainable set before Lightning builds the optimizer whose saved state it then loads.

    Args:
        stages: the stages in order, as config gives them (a mapping from stage name to its
            fields, so an experiment overrides one stage by name), or a list of ``Stage`` objects
            (or mappings of all its fields).
    """

    def __init__(
        self, stages: Mapping[str, Mapping[str, Any]] | Sequence[Stage | Mapping[str, Any]]
    ) -> None:
        if isinstance(stages, Mapping):
            stages = [Stage(name=name, **fields) for name, fields in stages.items()]
        self.stages = [s if isinstance(s, Stage) else Stage(**s) for s in stages]
        if not self.stages:
            raise ValueError("a curriculum needs at least one stage")
        for stage in self.stages[:-1]:
            if stage.steps is None and stage.monitor is None:
                raise ValueError(f"stage {stage.name!r} is not last: give it steps or a monitor")
        self.progress = _Progress()
        self._module: StagedModule | None = None
        self._trainer: L.Trainer | None = None

    @property
    def stage(self) -> Stage:
        return self.stages[self.progress.index]

    @property
    def task_names(self) -> set[str]:
        return {t for s in self.stages for t in s.tasks}

    # ---------------------------------------------------------------- Lightning hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, StagedModule):
            raise TypeError("CurriculumCallback drives a StagedModule, e.g. SpeechLLMModule")
        self._module, self._trainer = pl_module, trainer
        if not isinstance(trainer.strategy, (SingleDeviceStrategy, DDPStrategy)):
            pl_module.attach_adapters([stage.plan() for stage in self.stages])
        self._apply(rebuild=False)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        p, stage = self.progress, self.stage
        last = p.index == len(self.stages) - 1
        done = stage.steps is not None and trainer.global_step - p.start_step >= stage.steps
        plateaued = stage.monitor is not None and p.bad_evals >= stage.patience
        if not last and (done or plateaued):
            self._advance(trainer)
        # the report marks stage starts on the training curves from this column
        pl_module.log("stage", float(self.progress.index), on_step=True, on_epoch=False)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        stage, p = self.stage, self.progress
        if stage.monitor is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(stage.monitor)
        if value is None:
            raise KeyError(f"stage {stage.name!r} monitors {stage.monitor!r}, which is not logged")
        value = float(value)
        better = p.best is None or (value < p.best if stage.mode == "min" else value > p.best)
        p.best, p.bad_evals = (value, 0) if better else (p.best, p.bad_evals + 1)

    def state_dict(self) -> dict[str, Any]:
        p = self.progress
        return {
            "index": p.index,
            "start_step": p.start_step,
            "best": p.best,
            "bad_evals": p.bad_evals,
            "transitions": [list(t) for t in p.transitions],
            "names": [s.name for s in self.stages],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        names = [s.name for s in self.stages]
        if state_dict["names"] != names:
            raise ValueError(f"checkpoint curriculum {state_dict['names']} differs from {names}")
        self.progress = _Progress(
            state_dict["index"],
            state_dict["start_step"],
            state_dict["best"],
            state_dict["bad_evals"],
            [tuple(t) for t in state_dict["transitions"]],
        )
        if self._module is not None:  # setup ran: restore the trainable set before optimizers
            # a strategy that restores after setup has built the optimizer for stage 0 already
            self._apply(rebuild=self._trainer.strategy.restore_checkpoint_after_setup)

    # ---------------------------------------------------------------- transitions
    def _advance(self, trainer: L.Trainer) -> None:
        p = self.progress
        p.index += 1
        p.start_step, p.best, p.bad_evals = trainer.global_step, None, 0
        p.transitions.append((trainer.global_step, p.index))
        log.info("curriculum: stage %d %r from step %d", p.index, self.stage.name, p.start_step)
        self._apply(rebuild=True)

    def _apply(self, rebuild: bool) -> None:
        trainer, stage = self._trainer, self.stage
        self._module.begin_stage(stage.plan(self._horizon()))
        datamodule = getattr(trainer, "datamodule", None)
        if isinstance(datamodule, CurriculumData):
            datamodule.set_mixture_schedule(self.mixture_schedule())
            # each stage is validated on its own tasks
            datamodule.set_val_tasks({t for t, w in stage.tasks.items() if w > 0})
        if rebuild:
            if isinstance(trainer.strategy, DDPStrategy):
                rewrap_ddp(trainer.strategy)
            trainer.strategy.setup_optimizers(trainer)

    def _horizon(self) -> int | None:
        """The current stage's length: the schedule restarts with the stage, so it must also
        end with it. An open stage runs to ``max_steps`` from its start (restored on resume);
        ``None`` (no ``max_steps``, or none left) leaves the module's own fallback and check.
        """
        if self.stage.steps is not None:
            return self.stage.steps
        left = self._trainer.max_steps - self.progress.start_step
        return left if left > 0 else None

    def mixture_schedule(self) -> list[tuple[int, dict[str, float]]]:
        """``(first optimizer step, task weights)`` for every stage whose start is known.

        Known means already entered, or reached through stages of fixed length, so the data
        side can draw batch ``k`` as a pure function of ``k`` (exact resume with prefetch).
        """
        p = self.progress
        starts = {0: 0, **{index: step for step, index in p.transitions}}
        schedule = [(starts[i], self.stages[i].tasks) for i in range(p.index + 1)]
        step = p.start_step
        for i in range(p.index, len(self.stages) - 1):
            if self.stages[i].steps is None:
                break
            step += self.stages[i].steps
            schedule.append((step, self.stages[i + 1].tasks))
        return schedule


def rewrap_ddp(strategy: DDPStrategy) -> None:
    """Wrap the module in a new ``DistributedDataParallel`` after the trainable set changed.

    DDP's reducer hooks the parameters that required grad when it was built: kept, it would
    wait for gradients of parameters frozen since and never average those trainable since.
    Lightning has no public call for a new wrapper, so this takes the path its own setup
    takes: the bare LightningModule back as ``strategy.model``, then ``configure_ddp``, which
    also brings back the DDP arguments and communication hooks the strategy was given.
    """
    strategy.model = strategy.lightning_module
    strategy.configure_ddp()
