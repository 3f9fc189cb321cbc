"""A package's public names imported on first use (PEP 562 module ``__getattr__``).

``speechllm.data`` and ``speechllm.training`` list their names here instead of importing them,
so a command's ``--help`` and its config check run before torch, Lightning or transformers load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, public: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and ``__getattr__`` for ``package``, from ``public`` (module -> names)."""
    module_of = {name: module for module, names in public.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module_of[name]), name)

    return sorted(module_of), __getattr__
