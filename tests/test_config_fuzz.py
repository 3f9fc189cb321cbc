"""Config overrides from hypothesis: each composes and passes the checks, or fails naming a key.

No override may get past ``validate`` with an error of another kind (an ``AttributeError`` from
deep inside a check is a crash, not a message).
"""

from __future__ import annotations

from hydra.errors import HydraException
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from speechllm.config import ConfigError, compose, validate

BASE = ["experiment=tiny_smoke", "data.train_manifests=[m.jsonl]"]


def leaf_keys() -> list[str]:
    cfg = compose(BASE, output_dir="/tmp/x")
    keys: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            keys.append(prefix)

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return [k for k in keys if not k.startswith(("hydra", "paths"))]


KEYS = leaf_keys()
values = (
    st.none().map(lambda _: "null")
    | st.booleans().map(str).map(str.lower)
    | st.integers(-(10**30), 10**30).map(str)
    | st.floats(allow_nan=True).map(repr)
    | st.text(max_size=12)
    | st.lists(st.integers(-5, 5), max_size=3).map(lambda xs: "[" + ",".join(map(str, xs)) + "]")
)
keys = (
    st.sampled_from(KEYS)
    | st.sampled_from(KEYS).map(lambda k: k + "x")
    | st.from_regex(r"[a-z_][a-z0-9_.]{0,10}", fullmatch=True)
)


@settings(max_examples=max(1, settings.default.max_examples // 6))  # each composes the config
@given(st.lists(st.tuples(keys, values, st.sampled_from(["", "+", "~"])), max_size=3))
def test_overrides_compose_and_validate_or_fail_with_a_config_error(overrides) -> None:
    args = [f"{op}{key}={value}" if op != "~" else f"~{key}" for key, value, op in overrides]
    try:
        cfg = compose([*BASE, *args], output_dir="/tmp/x")
        validate(cfg)
    except (ConfigError, HydraException, OmegaConfBaseException) as error:
        assert str(error)
