"""Hydra ``_target_`` nodes: every key beside ``_target_`` is a parameter of its target.

One walker, two checks before anything is built:

- the user's own config (:func:`speechllm.config.check_targets`): any importable target, and
  a target that takes ``**kwargs`` takes any key;
- a config read back from a file (:func:`speechllm.models.components.check`), stricter: only
  allow-listed targets, no key rides along in ``**kwargs``, no ``_args_``, no interpolation.

Targets resolve through Hydra's public lookup (``hydra.utils.get_method``). Nothing of
speechllm and no torch is imported here, so a config check fails in a second.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from hydra.utils import get_method

HYDRA_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
"""The keys Hydra's ``instantiate`` reads itself; none is passed to the target by name."""


def nodes(config: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every value of a plain config (dicts, lists and leaves), parents before their children.

    Args:
        config: plain containers; turn an OmegaConf config into them unresolved first
            (``OmegaConf.to_container(cfg, resolve=False)``), so nothing is resolved by a check.
        where: the key path of ``config`` itself.

    Yields:
        ``(key path, value)``: ``model.llm.name_or_path``, ``callbacks[0]``.
    """
    yield where, config
    if isinstance(config, Mapping):
        for key, value in config.items():
            yield from nodes(value, f"{where}.{key}".lstrip("."))
    elif isinstance(config, list):
        for i, item in enumerate(config):
            yield from nodes(item, f"{where}[{i}]")


def locate(name: str) -> Callable[..., Any]:
    """The callable a ``_target_`` names.

    Hydra logs a failed lookup as an error before raising it; that line is left out, as the
    caller reports the failure itself (a config mistake is one line).

    Raises:
        ImportError: nothing importable has that name.
        ValueError: it names something that cannot be called.
    """
    hydra_log = logging.getLogger("hydra.utils")
    disabled, hydra_log.disabled = hydra_log.disabled, True
    try:
        return get_method(name)
    finally:
        hydra_log.disabled = disabled


def parameters(target: Callable[..., Any]) -> tuple[list[str], bool]:
    """``target``'s parameters that a key can fill, and whether it takes ``**kwargs``."""
    try:
        params = inspect.signature(target).parameters.values()
    except ValueError:  # a class written in C (``dict``): nothing tells what it takes
        return [], True
    named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def unknown_keys(
    node: Mapping[str, Any],
    target: Callable[..., Any],
    extra: Collection[str] = frozenset(),
    kwargs_take_any: bool = True,
) -> list[str]:
    """The keys of a ``_target_`` node that ``target`` does not take, in the node's order.

    Args:
        node: the node, ``_target_`` and Hydra's other keys included.
        target: what ``node["_target_"]`` names (:func:`locate`).
        extra: keys taken besides the named parameters.
        kwargs_take_any: a target with ``**kwargs`` takes any key (the user's own config);
            ``False`` for a config from a file, where no key may ride along in ``**kwargs``.
    """
    named, takes_any = parameters(target)
    if takes_any and kwargs_take_any:
        return []
    return [key for key in node if key not in HYDRA_KEYS and key not in named and key not in extra]
