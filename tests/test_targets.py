"""One rule, two checks: the user's config and a config read from a file agree on what a
``_target_`` takes; the file's check stays stricter."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from speechllm import _targets
from speechllm.config import ConfigError, check_targets, compose, register_resolvers
from speechllm.models import components
from speechllm.models.components import UnsafeConfigError

ROOT = Path(__file__).resolve().parents[1]


def model_node(*overrides: str) -> dict[str, Any]:
    cfg = compose(list(overrides), output_dir="/tmp/unused")
    return OmegaConf.to_container(cfg.module.model, resolve=True)


def both(node: dict[str, Any]) -> tuple[str | None, str | None]:
    """The error of each check on ``node`` (``None``: it passed)."""
    found: list[str | None] = []
    for check, error in (
        (lambda: check_targets(OmegaConf.create({"model": node})), ConfigError),
        (lambda: components.check(node, "config.json", "model"), UnsafeConfigError),
    ):
        try:
            check()
            found.append(None)
        except error as err:
            found.append(str(err))
    return found[0], found[1]


def test_both_checks_pass_the_shipped_model() -> None:
    assert both(model_node()) == (None, None)


def test_both_checks_refuse_a_key_that_is_not_a_parameter() -> None:
    node = model_node("+downsampler.stride=[2]")
    user, file = both(node)
    assert user is not None and "model.downsampler.stride: " in user and "'strides'" in user
    assert file is not None and "model.downsampler.stride: " in file


def test_only_the_file_check_refuses_args_and_keys_riding_in_kwargs() -> None:
    node = model_node("llm=pretrained", "llm.name_or_path=some/llm")
    node["llm"]["revision"] = "main"  # LLM.from_pretrained(**model_kwargs)
    user, file = both(node)
    assert user is None and file is not None and "takes no key 'revision'" in file
    node = model_node()
    node["downsampler"] = {**node["downsampler"], "_args_": [4096]}
    user, file = both(node)
    assert user is None and file is not None and "downsampler._args_: refused" in file
    node = model_node()
    node["prompt_template"] = "${oc.env:HF_TOKEN}"
    user, file = both(node)
    assert user is None and file is not None and "is an interpolation" in file


def test_the_walker_yields_every_value_with_its_path() -> None:
    config = {"a": {"b": [1, {"c": 2}]}}
    assert [where for where, _ in _targets.nodes(config)] == [
        "",
        "a",
        "a.b",
        "a.b[0]",
        "a.b[1]",
        "a.b[1].c",
    ]


def test_an_interpolated_target_is_resolved_and_checked() -> None:
    cfg = OmegaConf.create({"name": "math.floor", "x": {"_target_": "${name}", "y": 1}})
    with pytest.raises(ConfigError, match=r"x\.y: math\.floor has no parameter 'y'"):
        check_targets(cfg)


def test_a_class_without_a_signature_takes_any_key() -> None:
    check_targets(OmegaConf.create({"x": {"_target_": "builtins.dict", "a": 1}}))


def test_a_target_that_cannot_be_called_is_named() -> None:
    with pytest.raises(ConfigError, match=r"x\._target_: .*non-callable"):
        check_targets(OmegaConf.create({"x": {"_target_": "math.pi"}}))


def test_a_failed_lookup_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(ConfigError, match="cannot import"):
        check_targets(OmegaConf.create({"x": {"_target_": "speechllm.no_such_thing"}}))
    assert caplog.records == []
    assert not logging.getLogger("hydra.utils").disabled


def test_resolvers_are_registered_explicitly_and_once_is_enough() -> None:
    code = (
        "import speechllm.config as c; from omegaconf import OmegaConf as O; "
        "print(O.has_resolver('speechllm_cache')); c.register_resolvers(); "
        "c.register_resolvers(); print(O.has_resolver('speechllm_cache'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["False", "True"], done.stderr
    register_resolvers()
    cache = OmegaConf.create({"c": "${speechllm_cache:}"}).c
    assert Path(cache).name and cache == str(Path(cache))
