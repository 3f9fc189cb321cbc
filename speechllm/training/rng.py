"""Per-rank random streams, saved and restored per rank.

Every rank is seeded alike while the model is built (frozen random bases must match), but
training draws dropout masks and augmentations: identical streams on every rank would make
``W`` ranks draw the same masks, wasting the data parallelism's noise. So :func:`seed_rank`
gives each rank its own stream once the process group exists, and a checkpoint holds every
rank's state (gathered to the writer), so rank ``r`` resumes from rank ``r``'s state::

    build (seed s on all ranks) ─► rank r > 0: SeedSequence([s, r]) ─► train ─► save [S_0 .. S_W-1]
                                                        resume on rank r ◄─ S_r ◄┘
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states, as tensors and plain types."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": list(random.getstate()[1]),
        "python_gauss": random.getstate()[2],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((3, tuple(state["python"]), state["python_gauss"]))
    keys = state["numpy"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_rank(rank: int) -> int | None:
    """Give rank ``rank > 0`` its own stream: the run's seed (torch's last) mixed with ``rank``.

    Rank 0 keeps the stream it has, so a single-process run draws exactly what it drew before
    ranks had streams of their own. Returns the new seed, or ``None`` on rank 0.
    """
    if rank == 0:
        return None
    seed = int(np.random.SeedSequence([torch.initial_seed(), rank]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's :func:`rng_state`, in rank order (a collective: call it on every rank)."""
    state = rng_state()
    if not (dist.is_available() and dist.is_initialized()):
        return [state]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, state)
    return states


def restore_rank_rng(states: list[dict[str, Any]] | dict[str, Any], rank: int, world: int) -> None:
    """Restore ``rank``'s saved stream; with another world size, reseed from rank 0's.

    A single dict is a checkpoint written before states were kept per rank.
    """
    states = [states] if isinstance(states, dict) else states
    if len(states) == world:
        set_rng_state(states[rank])
        return
    log.warning(
        "checkpoint holds RNG states of %d ranks, this run has %d: reseeding each rank from "
        "rank 0's state (the random stream differs from an uninterrupted run)",
        len(states),
        world,
    )
    set_rng_state(states[0])
    seed_rank(rank)
