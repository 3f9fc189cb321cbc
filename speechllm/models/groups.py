"""Trainable groups: what a curriculum stage names in ``trainable``, parsed in one place.

``downsampler``, ``layer_weights``, ``heads`` and ``ctc`` are modules of the SpeechLLM;
``lora`` is every adapter the LLM declares and ``lora.<name>`` one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MODULE_GROUPS = ("downsampler", "layer_weights", "heads", "ctc")
TRAINABLE_GROUPS = ("downsampler", "layer_weights", "lora", "heads", "ctc")
ADAPTER_PREFIX = "lora."


@dataclass(frozen=True)
class TrainableGroups:
    """A parsed ``trainable`` list.

    Args:
        modules: the module groups named (``downsampler``, ``layer_weights``, ``heads``).
        adapters: adapters named one by one (``lora.<name>``).
        all_adapters: ``lora`` was named: every declared adapter trains.
    """

    modules: tuple[str, ...]
    adapters: tuple[str, ...]
    all_adapters: bool

    @classmethod
    def parse(cls, groups: Iterable[str]) -> TrainableGroups:
        """Parse group names; an unknown one raises ``ValueError`` naming the valid ones."""
        groups = list(groups)
        unknown = [
            g for g in groups if g not in TRAINABLE_GROUPS and not g.startswith(ADAPTER_PREFIX)
        ]
        if unknown:
            raise ValueError(
                f"unknown trainable groups {unknown}; use {list(TRAINABLE_GROUPS)} or lora.<name>"
            )
        return cls(
            modules=tuple(g for g in groups if g in MODULE_GROUPS),
            adapters=tuple(
                g.removeprefix(ADAPTER_PREFIX) for g in groups if g.startswith(ADAPTER_PREFIX)
            ),
            all_adapters="lora" in groups,
        )

    def adapter_names(self, declared: Iterable[str]) -> list[str]:
        """The adapters that train, given those the LLM declares (``lora`` means all of them)."""
        return list(declared) if self.all_adapters else list(self.adapters)
