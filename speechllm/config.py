"""Config checks that run before anything is built: a typo fails in a second, not an hour."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra._internal.utils import _locate
from omegaconf import DictConfig, ListConfig, OmegaConf

from speechllm.models.fetch import cache_dir
from speechllm.models.groups import TrainableGroups

HYDRA_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}

# ${speechllm_cache:} in configs is the one cache folder speechllm-fetch writes to
OmegaConf.register_new_resolver("speechllm_cache", lambda: str(cache_dir()), replace=True)


class ConfigError(ValueError):
    """A config problem, named by its dotted key."""


def _signature(target: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(target.__init__ if inspect.isclass(target) else target)


def check_targets(cfg: Any, path: str = "") -> None:
    """Every ``_target_`` resolves, and every key beside it is one of its parameters."""
    if isinstance(cfg, ListConfig):
        for i, item in enumerate(cfg):
            check_targets(item, f"{path}[{i}]")
        return
    if not isinstance(cfg, DictConfig):
        return
    if "_target_" in cfg:
        name = cfg._target_
        if not isinstance(name, str):
            raise ConfigError(f"{path}._target_: must be a dotted name, got {name!r}")
        try:
            target = _locate(name)
        except ImportError as err:
            raise ConfigError(f"{path}._target_: cannot import {name!r} ({err})") from err
        params = _signature(target).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key in cfg:
            if key in HYDRA_KEYS or key in params or takes_any:
                continue
            close = difflib.get_close_matches(str(key), list(params), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}.{key}: {name} has no parameter {key!r}{hint}".lstrip("."))
    for key in cfg:
        if key not in HYDRA_KEYS:
            check_targets(cfg._get_node(key), f"{path}.{key}".lstrip("."))


def check_curriculum(cfg: DictConfig, known_tasks: set[str]) -> None:
    """Stage tasks exist and trainable groups are known and name declared adapters."""
    adapters = set(OmegaConf.select(cfg, "llm.adapters") or {})
    for name, stage in (OmegaConf.select(cfg, "curriculum.stages") or {}).items():
        where = f"curriculum.stages.{name}"
        unknown = set(stage.get("tasks", {})) - known_tasks
        if unknown:
            raise ConfigError(
                f"{where}.tasks: unknown tasks {sorted(unknown)}; known: {sorted(known_tasks)}"
            )
        try:
            groups = TrainableGroups.parse(stage.get("trainable", []))
        except ValueError as err:
            raise ConfigError(f"{where}.trainable: {err}") from None
        for adapter in groups.adapters:
            if adapter not in adapters:
                raise ConfigError(
                    f"{where}.trainable: adapter {adapter!r} is not declared "
                    f"in llm.adapters ({sorted(adapters)})"
                )
        if groups.all_adapters and not adapters:
            raise ConfigError(f"{where}.trainable: 'lora' but llm.adapters is empty")


def validate(cfg: DictConfig) -> None:
    """All checks, without building a model or reading data."""
    from speechllm.data.tasks import TASKS

    missing = OmegaConf.missing_keys(cfg)
    if missing:
        raise ConfigError(f"missing values for: {sorted(missing)}")
    check_targets(cfg)
    check_curriculum(cfg, set(TASKS))


CONF_DIR = Path(__file__).parent / "conf"
"""The Hydra config groups: the top-level ``conf/`` (linked from here in a checkout, copied into
an installed wheel)."""


def compose(
    overrides: list[str] | None = None,
    output_dir: str | Path | None = None,
    config_name: str = "train",
) -> DictConfig:
    """The training config as ``speechllm-train`` would compose it, for tests and scripts.

    ``output_dir`` stands in for Hydra's run directory, which only exists under ``main()``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    overrides = list(overrides or [])
    if output_dir is not None:
        overrides.append(f"paths.output_dir={output_dir}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides)
