"""Config checks that run before anything is built: a typo fails in a second, not an hour."""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from speechllm import _targets
from speechllm.tasks import TEXT_TASK


def _cache_dir() -> str:
    # imported when resolved: speechllm.models loads torch, and a config that fails its checks
    # (a missing manifest) should fail before that
    from speechllm.models.fetch import cache_dir

    return str(cache_dir())


def register_resolvers() -> None:
    """Teach OmegaConf speechllm's interpolations: ``${speechllm_cache:}``, the one cache folder
    ``speechllm-fetch`` writes to (``conf/paths/default.yaml``).

    :func:`compose` and :func:`run_hydra` (every Hydra entry point) call it; call it yourself
    before resolving a config composed any other way. Calling it again changes nothing.
    """
    OmegaConf.register_new_resolver("speechllm_cache", _cache_dir, replace=True)


class ConfigError(ValueError):
    """A config problem, named by its dotted key."""


def check_targets(cfg: DictConfig) -> None:
    """Every ``_target_`` resolves, and every key beside it is one of its parameters (or the
    target takes ``**kwargs``). Only an interpolated ``_target_`` is resolved."""
    for where, node in _targets.nodes(OmegaConf.to_container(cfg, resolve=False)):
        if not isinstance(node, dict) or "_target_" not in node:
            continue
        name = node["_target_"]
        at = f"{where}._target_".lstrip(".")
        if isinstance(name, str) and "${" in name:
            name = OmegaConf.select(cfg, at)
        if not isinstance(name, str):
            raise ConfigError(f"{at}: must be a dotted name, got {name!r}")
        try:
            target = _targets.locate(name)
        except ImportError as err:
            raise ConfigError(f"{at}: cannot import {name!r} ({err})") from err
        except ValueError as err:
            raise ConfigError(f"{at}: {err}") from err
        unknown = _targets.unknown_keys(node, target)
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(str(key), _targets.parameters(target)[0], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}.{key}: {name} has no parameter {key!r}{hint}".lstrip("."))


def check_curriculum(cfg: DictConfig, known_tasks: set[str]) -> None:
    """Stage tasks exist and trainable groups are known and name declared adapters."""
    from speechllm.models.groups import TrainableGroups

    adapters = set(OmegaConf.select(cfg, "llm.adapters") or {})
    stages = OmegaConf.select(cfg, "curriculum.stages") or {}
    for name, stage in list(stages.items())[:-1]:
        if stage.get("steps") is None and stage.get("monitor") is None:
            raise ConfigError(
                f"curriculum.stages.{name}: a stage before the last needs a length "
                f"(curriculum.stages.{name}.steps=N) or a monitor"
            )
    for name, stage in stages.items():
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
        text_weight = stage.get("tasks", {}).get(TEXT_TASK, 0)
        if text_weight and not OmegaConf.select(cfg, "data.text_manifests", default=None):
            raise ConfigError(
                f"{where}.tasks: {TEXT_TASK!r} has weight {text_weight} but data.text_manifests "
                "is empty; list the text items with 'data.text_manifests=[PATH]'"
            )


FED_MANIFESTS = ("train_manifests", "val_manifests", "text_manifests")
"""The manifest lists of ``data`` a fit reads (test manifests are read only by a test run)."""


def check_manifests(cfg: DictConfig) -> None:
    """Every manifest a fit reads is there: a missing one fails now, before any model is built.

    The default data (``data=synthetic``) reads ``paths.data_dir``, so the message says how to
    make it as well as how to point elsewhere.
    """
    data = cfg.get("data") or {}
    for key in FED_MANIFESTS:
        for path in data.get(key) or []:
            if "://" in str(path) or Path(path).exists():
                continue
            data_dir = OmegaConf.select(cfg, "paths.data_dir", default=None)
            make = (
                f"make it with `speechllm-synth out={data_dir}`, or "
                if data_dir and Path(path).parent == Path(data_dir)
                else ""
            )
            raise ConfigError(
                f"data.{key}: {path} does not exist; {make}point training at your own "
                f"manifests with 'data.{key}=[PATH]'" + (" (or paths.data_dir=DIR)" if make else "")
            )


def check_loggers(cfg: DictConfig) -> None:
    """Each logger's package is installed: a missing one (``logger=tensorboard`` without
    tensorboardX) fails now, naming the extra that brings it, not after the models are built.
    A logger class says so through its ``missing_extra()`` (``speechllm.training.loggers``)."""
    for key, node in (cfg.get("logger") or {}).items():
        name = node.get("_target_") if isinstance(node, DictConfig) else None
        missing = getattr(_targets.locate(name), "missing_extra", None) if name else None
        why = missing() if callable(missing) else None
        if why:
            raise ConfigError(f"logger.{key}: {why} (or leave it out: logger=csv)")


def validate(cfg: DictConfig) -> None:
    """All checks, without building a model or reading data."""
    from speechllm.tasks import TASKS

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

    register_resolvers()
    overrides = list(overrides or [])
    if output_dir is not None:
        overrides.append(f"paths.output_dir={output_dir}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides)


def override_hint(error: BaseException) -> str | None:
    """One line for Hydra's refusal of an override whose key is not in the config, with the
    closest existing names (the node's keys and its ``_target_``'s parameters); ``None`` for any
    other error."""
    cause = error.__cause__
    node = getattr(cause, "parent_node", None)
    key, full_key = getattr(cause, "key", None), getattr(cause, "full_key", None)
    if not isinstance(node, DictConfig) or key is None or "not in struct" not in str(cause):
        return None
    names = [str(k) for k in node if k != "hydra"]
    with contextlib.suppress(Exception):  # a target that does not import: its keys suffice
        names += _targets.parameters(_targets.locate(node._target_))[0]
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{full_key}: no such key; {hint}(to add a new key: +{full_key}=...)"


_FULL_ERROR = "HYDRA_FULL_ERROR"
_OWN_FULL_ERROR: list[bool] = []  # set while run_hydra set HYDRA_FULL_ERROR itself


def run_hydra(hydra_main: Callable[[], Any], prog: str) -> Any:
    """Call a ``@hydra.main`` function so a mistyped override prints one line, not Hydra's
    "not in struct ... use +".

    Hydra prints and exits on a composition error unless ``HYDRA_FULL_ERROR`` is set, so it is
    set while Hydra composes; the task's :func:`config_errors` unsets it again, so an error while
    running keeps Hydra's usual report.
    """
    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException

    register_resolvers()
    own = _FULL_ERROR not in os.environ
    if own:
        os.environ[_FULL_ERROR] = "1"
        _OWN_FULL_ERROR.append(True)
    try:
        return hydra_main()
    except CompactHydraException as err:
        if not own or not _OWN_FULL_ERROR:  # the user asked for tracebacks, or the task raised
            raise
        hint = override_hint(err)
        if hint is not None:
            print(f"{prog}: error: {hint}", file=sys.stderr)
            sys.exit(2)
        # any other composition error: Hydra's own short report, as without this wrapper
        cause = f"\n{err.__cause__}" if isinstance(err.__cause__, OmegaConfBaseException) else ""
        print(f"{err}{cause}", file=sys.stderr)
        sys.exit(1)
    finally:
        _restore_full_error()


def _restore_full_error() -> None:
    if _OWN_FULL_ERROR:
        _OWN_FULL_ERROR.clear()
        os.environ.pop(_FULL_ERROR, None)


@contextlib.contextmanager
def config_errors(prog: str, run_dir: str | Path | None = None) -> Iterator[None]:
    """Inside a Hydra task: a :class:`ConfigError` prints one line and exits with status 2,
    and the run folder Hydra just made is removed if it holds nothing else (no stray folder
    for a run that never started)."""
    _restore_full_error()
    try:
        yield
    except ConfigError as err:
        if run_dir is not None:
            remove_unused_run_dir(Path(run_dir))
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)


def remove_unused_run_dir(run_dir: Path) -> None:
    """Remove ``run_dir`` if it only holds what Hydra writes at start (``.hydra/``, ``*.log``),
    then its parents up to the working directory while they are empty."""
    if not run_dir.is_dir() or any(
        p.name != ".hydra" and p.suffix != ".log" for p in run_dir.iterdir()
    ):
        return
    shutil.rmtree(run_dir)
    cwd, parent = Path.cwd().resolve(), run_dir.resolve().parent
    while parent != cwd and cwd in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
