"""A config read from a file is data: hostile exports and checkpoints are refused, nothing runs.

Each payload is real: it would write a marker file (or truncate one) if it ran. Hydra's own
blocklist stops some targets (``eval``, ``subprocess.run``, ``import_module``) but not
``torch.hub.load`` or ``builtins.open``; the controls show those run under plain Hydra.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.utils import instantiate

from speechllm.models import ConvDownsampler, SpeechLLM, components
from speechllm.models.components import UnsafeConfigError
from speechllm.models.pretrained import load
from tests.models.test_pretrained import NODE

WRITES_MARKER = "open({marker!r}, 'w').write('ran')\n"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = instantiate(NODE, _convert_="all")
    return model.save_pretrained(tmp_path_factory.mktemp("clean") / "export", NODE)


def hostile_copy(export: Path, tmp_path: Path, part: str, node: dict[str, Any]) -> Path:
    """The export with ``model.<part>`` replaced by ``node`` in its config.json."""
    out = tmp_path / "hostile"
    shutil.copytree(export, out)
    meta = json.loads((out / "config.json").read_text())
    meta["model"][part] = node
    (out / "config.json").write_text(json.dumps(meta))
    return out


def payloads(tmp_path: Path, marker: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name -> (model part, node); every one of them would create ``marker``."""
    (tmp_path / "evil_module.py").write_text(WRITES_MARKER.format(marker=str(marker)))
    (tmp_path / "hubrepo").mkdir()
    (tmp_path / "hubrepo" / "hubconf.py").write_text(WRITES_MARKER.format(marker=str(marker)))
    code = WRITES_MARKER.format(marker=str(marker)).strip()
    return {
        "eval": ("llm", {"_target_": "builtins.eval", "_args_": [code]}),
        "subprocess": ("encoder", {"_target_": "subprocess.run", "args": ["touch", str(marker)]}),
        "import_module": (
            "downsampler",
            {"_target_": "importlib.import_module", "name": "evil_module"},
        ),
        "torch_hub": (
            "encoder",
            {
                "_target_": "torch.hub.load",
                "repo_or_dir": str(tmp_path / "hubrepo"),
                "model": "anything",
                "source": "local",
            },
        ),
        "nested": (
            "llm",
            {
                "_target_": "speechllm.models.LLM.from_pretrained",
                "name_or_path": "./llm",
                "adapters": {"default": {"_target_": "builtins.exec", "_args_": [code]}},
            },
        ),
    }


@pytest.mark.parametrize("name", ["eval", "subprocess", "import_module", "torch_hub", "nested"])
def test_a_target_outside_the_allow_list_is_refused_and_nothing_runs(
    name: str, export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "ran"
    part, node = payloads(tmp_path, marker)[name]
    with pytest.raises(
        UnsafeConfigError, match=r"config\.json: model\..*not a speechllm component"
    ):
        load(hostile_copy(export, tmp_path, part, node))
    assert not marker.exists()


def test_control_plain_hydra_runs_torch_hub_load(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "ran"
    with pytest.raises(Exception):  # noqa: B017, PT011 - the hub repo has no "anything"
        instantiate(payloads(tmp_path, marker)["torch_hub"][1])
    assert marker.read_text() == "ran"  # what the allow-list stops above


def test_builtins_open_cannot_truncate_a_file(export: Path, tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    node = {"_target_": "builtins.open", "_args_": [str(victim), "w"]}
    with pytest.raises(UnsafeConfigError, match="'builtins.open' is not a speechllm component"):
        load(hostile_copy(export, tmp_path, "llm", node))
    assert victim.read_text() == "keep me"
    instantiate(node).close()  # control: plain Hydra truncates it
    assert victim.read_text() == ""


def test_trust_remote_code_from_the_file_is_refused(export: Path, tmp_path: Path) -> None:
    """The export's llm/ ships remote code that writes the marker if transformers imports it."""
    marker = tmp_path / "ran"
    hostile = hostile_copy(
        export,
        tmp_path,
        "llm",
        {
            "_target_": "speechllm.models.LLM.from_pretrained",
            "name_or_path": "./llm",
            "trust_remote_code": True,
        },
    )
    (hostile / "llm" / "evil.py").write_text(WRITES_MARKER.format(marker=str(marker)))
    config = json.loads((hostile / "llm" / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.Evil"}
    (hostile / "llm" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeConfigError, match="model.llm.trust_remote_code: refused"):
        load(hostile)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"prompt_template": "${oc.env:HF_TOKEN}"}, "is an interpolation"),
        (
            {"llm": {"_target_": "speechllm.models.LLM.from_pretrained", "device_map": "auto"}},
            "takes no key 'device_map'",
        ),
        (
            {"llm": {"_target_": "speechllm.models.LLM.from_pretrained", "name_or_path": "./../x"}},
            "leaves the export folder",
        ),
    ],
)
def test_other_things_a_file_may_not_say(export, tmp_path, node, message) -> None:
    ((part, value),) = node.items()
    with pytest.raises(UnsafeConfigError, match=message):
        load(hostile_copy(export, tmp_path, part, value))


def test_a_checkpoint_recipe_is_checked_too(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    node = {**NODE, "encoder": {"_target_": "subprocess.run", "args": ["touch", str(marker)]}}
    ckpt = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "speechllm": {"config": {"model": node, "seed": 0}}}, ckpt)
    with pytest.raises(
        UnsafeConfigError, match=r"hostile\.ckpt: speechllm\.config\.model\.encoder"
    ):
        load(ckpt)
    assert not marker.exists()


class WideDownsampler(ConvDownsampler):
    """A user's own component: refused from the file until the user's code allows it."""


def test_an_own_component_loads_once_code_allows_it(export, tmp_path, monkeypatch) -> None:
    target = f"{__name__}.WideDownsampler"
    hostile = hostile_copy(
        export, tmp_path, "downsampler", {**NODE["downsampler"], "_target_": target}
    )
    with pytest.raises(UnsafeConfigError, match=r"speechllm.models.components.allow\("):
        load(hostile)
    monkeypatch.setattr(components, "COMPONENTS", dict(components.COMPONENTS))
    components.allow(target)
    assert isinstance(SpeechLLM.from_pretrained(hostile).downsampler, WideDownsampler)


def test_an_unknown_format_says_how_to_convert(export: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(export, old)
    meta = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**meta, "format": 0}))
    with pytest.raises(ValueError, match="format 0 .*export it again from its checkpoint"):
        load(old)
