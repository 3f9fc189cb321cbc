"""What a curriculum stage asks of the LightningModule: the plan it hands over, and the calls.

The curriculum (:mod:`speechllm.training.curriculum`) talks to the module only through
:class:`StagedModule`, and to the data module only through
:class:`speechllm.data.datamodule.CurriculumData`::

    CurriculumCallback ── begin_stage(StagePlan) ───────► SpeechLLMModule
                       ── attach_adapters([StagePlan]) ─►   (sharded strategies, at setup)
                       ── set_mixture_schedule(...) ────► SpeechDataModule, ShardedDataModule
                       ── set_val_tasks(...) ───────────►
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class StagePlan:
    """What the current curriculum stage asks of the steps and the optimizer.

    Args:
        horizon: the schedule's length in optimizer steps (``None``: ``trainer.max_steps``).
        objective: loss weights, ``lm``, ``ctc``, ``summary`` and ``kd`` (see
            :meth:`SpeechLLM.forward`).
        lr: one learning rate for the stage, or one per trainable group named in ``groups``
            (unnamed groups keep the optimizer's own); ``None`` keeps the optimizer's.
        warmup_steps: the stage's warm-up (``None``: the scheduler's own).
        groups: the stage's trainable groups, which ``lr`` may key.
        active_adapters: the adapters that run (``None``: every attached one).
    """

    horizon: int | None = None
    objective: dict[str, float] = field(default_factory=lambda: {"lm": 1.0})
    lr: float | dict[str, float] | None = None
    warmup_steps: int | None = None
    groups: list[str] = field(default_factory=list)
    active_adapters: list[str] | None = None


@runtime_checkable
class StagedModule(Protocol):
    """A LightningModule a curriculum can drive (:class:`SpeechLLMModule` is one)."""

    def begin_stage(self, plan: StagePlan) -> None:
        """Train what ``plan`` names from now on: its groups trainable, its adapters running
        and its objective in the steps; the optimizer Lightning builds next follows its
        horizon, rates and warm-up."""

    def attach_adapters(self, plans: Sequence[StagePlan]) -> None:
        """Attach now every adapter ``plans`` train or run, frozen until a stage trains it: a
        sharded strategy wraps the model once, so no adapter can be added later."""
