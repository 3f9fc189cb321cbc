"""Learning-rate schedules: linear warm-up, then cosine or linear decay."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_decay(
    optimizer: Optimizer,
    total_steps: int,
    warmup_steps: int = 100,
    decay: str = "cosine",
    min_ratio: float = 0.1,
    time_progress: Callable[[], float] | None = None,
) -> LambdaLR:
    """Warm up linearly for ``warmup_steps``, then decay to ``min_ratio`` of the peak.

    The curriculum builds a fresh optimizer at each stage, so the schedule restarts with the
    stage and ``total_steps`` is the stage's length (for an open stage, the steps left in the
    run). The factor of step ``i`` (0-based) sets the rate of the ``i``-th optimizer step, so
    the decay ends at ``i = total_steps - 1``: a stage's last step trains at ``min_ratio``
    (unless the stage is too short to decay: warm-up fills it, or it is one step long).

    Args:
        optimizer: the optimizer to schedule.
        total_steps: steps over which to decay; from step ``total_steps - 1`` on the rate
            stays at ``min_ratio``.
        warmup_steps: linear warm-up length (capped at ``total_steps``).
        decay: ``cosine``, ``linear`` or ``constant``.
        min_ratio: final rate as a fraction of the peak.
        time_progress: the share (0-1) of a time budget spent so far, for runs that stop on
            steps or time, whichever ends first: the decay follows whichever of steps and time
            is further along, so a run cut short by time still ends at ``min_ratio``.
    """
    if decay not in ("cosine", "linear", "constant"):
        raise ValueError(f"decay must be cosine, linear or constant, got {decay!r}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup_steps = min(warmup_steps, total_steps)
    # the decay runs from the peak (the warm-up's last step, or step 0 without warm-up) to the
    # last step, so that step itself trains at min_ratio
    peak = max(warmup_steps - 1, 0)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant":
            return 1.0
        progress = (step - peak) / max(1, total_steps - 1 - peak)
        if time_progress is not None:
            progress = max(progress, time_progress())
        progress = min(1.0, progress)
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
        return min_ratio + (1 - min_ratio) * shape

    return LambdaLR(optimizer, factor)
