"""Trainable groups: what a curriculum stage names in ``trainable``, parsed in one place.

``downsampler``, ``layer_weights``, ``heads`` and ``ctc`` are modules of the SpeechLLM;
``lora`` is every adapter the LLM declares and ``lora.<name>`` one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

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


def load_trainable(model: Any, state: dict[str, torch.Tensor], adapters: list[str]) -> None:
    """Attach ``adapters`` to ``model.llm`` if missing, then load exactly the weights
    ``model.trainable_state_dict()`` names from ``state``: a missing or extra one is an error,
    so a checkpoint from another architecture cannot half-load silently (a speech LLM and a
    text classifier alike)."""
    for name in adapters:
        if name not in model.llm.attached_adapters:
            model.llm.attach_adapter(name)
    expected = set(model.trainable_state_dict())
    missing, extra = expected - set(state), set(state) - expected
    if missing or extra:
        raise KeyError(
            f"trainable weights do not match: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(extra)[:5]}"
        )
    model.load_state_dict(state, strict=False)


class TrainableParts:
    """What a curriculum switches on and a checkpoint holds, for a model with a ``downsampler``,
    an ``encoder`` (its ``layer_weights``), ``heads``, an optional ``ctc`` aligner and an
    ``llm`` with named adapters (``SpeechLLM``): which parameters each group names, making
    exactly some groups trainable, and the trainable weights' state dict."""

    downsampler: nn.Module
    encoder: Any
    heads: nn.ModuleDict
    ctc: nn.Module | None
    llm: Any

    def group_parameters(self, group: str) -> list[nn.Parameter]:
        """Parameters of ``downsampler``, ``layer_weights``, ``heads``, ``ctc`` or
        ``lora[.<name>]`` (none for ``ctc`` on a model built without it)."""
        parsed = TrainableGroups.parse([group])
        if parsed.modules:
            module = self._group_modules.get(group)
            return list(module.parameters()) if module is not None else []
        names = parsed.adapter_names(self.llm.attached_adapters)
        return [p for name in names for p in self.llm.adapter_parameters(name)]

    @property
    def _group_modules(self) -> dict[str, nn.Module]:
        return {
            "downsampler": self.downsampler,
            "layer_weights": self.encoder.layer_weights,
            "heads": self.heads,
            **({"ctc": self.ctc} if self.ctc is not None else {}),
        }

    def set_trainable(self, groups: list[str], active_adapters: list[str] | None = None) -> None:
        """Make exactly ``groups`` trainable, attaching any named adapter not yet attached.

        ``lora`` means every declared adapter. All attached adapters run unless
        ``active_adapters`` says otherwise.
        """
        parsed = TrainableGroups.parse(groups)
        if "ctc" in parsed.modules and self.ctc is None:
            raise ValueError("group 'ctc' is trainable but the model has no CTC aligner (ctc=)")
        wanted_adapters = parsed.adapter_names(self.llm.adapter_configs)
        if parsed.all_adapters and not wanted_adapters:
            raise ValueError("group 'lora' is trainable but the LLM declares no adapters")
        for name in [*wanted_adapters, *(active_adapters or [])]:
            if name not in self.llm.attached_adapters:
                self.llm.attach_adapter(name)
        active = self.llm.attached_adapters if active_adapters is None else active_adapters
        self.llm.set_adapters(active=list(active), trainable=wanted_adapters)
        for group, module in self._group_modules.items():
            module.requires_grad_(group in parsed.modules)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Downsampler, layer weights, heads and every adapter: what a checkpoint must hold."""
        keep = {id(p) for g in TRAINABLE_GROUPS for p in self.group_parameters(g)}
        return {n: p.detach() for n, p in self.named_parameters() if id(p) in keep}

    def load_trainable_state_dict(
        self, state: dict[str, torch.Tensor], adapters: list[str]
    ) -> None:
        """Attach ``adapters`` if missing, then load every trainable weight from ``state``.

        Frozen bases are not in ``state``; any trainable weight missing from it is an error,
        so a checkpoint from another architecture cannot half-load silently.
        """
        load_trainable(self, state, adapters)

    def load_group_weights(self, state: dict[str, torch.Tensor], groups: Sequence[str]) -> None:
        """Load the module groups ``groups`` (``downsampler``, ``layer_weights``, ``heads``,
        ``ctc``) from ``state`` (keys as in ``state_dict()``): every weight of them, nothing
        else. Step two of two-step PEFT starts from step one's aligned downsampler and layer
        weights this way (``SpeechLLMModule(init_from=...)``); a shape that differs (another
        encoder or LLM) fails here, naming the weight.
        """
        parsed = TrainableGroups.parse(list(groups))
        if parsed.adapters or parsed.all_adapters:
            raise ValueError("adapters load by path (llm.adapter_paths), not as group weights")
        names = {id(m): name for name, m in self.named_modules()}
        wanted = {}
        for group in parsed.modules:
            module = self._group_modules.get(group)
            if module is None:
                raise ValueError(f"the model has no {group!r} to load")
            prefix = f"{names[id(module)]}."
            wanted |= {prefix + key: value for key, value in module.state_dict().items()}
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise KeyError(f"weights of {list(groups)} missing from the source: {missing[:5]}")
        for key, value in wanted.items():
            if state[key].shape != value.shape:
                raise ValueError(
                    f"{key}: the source's shape {tuple(state[key].shape)} is not this model's "
                    f"{tuple(value.shape)} (another encoder or LLM?)"
                )
        self.load_state_dict({key: state[key] for key in wanted}, strict=False)
