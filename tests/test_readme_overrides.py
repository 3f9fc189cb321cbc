"""The README's override forms compose as it says: a curriculum stage dropped or added by name,
and a ``prompt_template`` with a real line break, which Hydra's command line cannot unescape
(bash's ``$'...'`` quoting or a YAML file of your own gives one)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from hydra.utils import instantiate

from speechllm.config import ConfigError, compose, validate

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def shown(pattern: str) -> str:
    """The first README fragment in backticks matching ``pattern``, as the shell passes it."""
    match = re.search(rf"`({pattern})`", README)
    assert match, f"the README no longer shows {pattern}"
    (argument,) = shlex.split(match.group(1))
    return argument


def test_a_stage_dropped_by_name_leaves_the_others(tmp_path: Path) -> None:
    cfg = compose([shown(r"'~curriculum\.stages\.\w+'")], output_dir=tmp_path)
    validate(cfg)
    assert [s.name for s in instantiate(cfg.curriculum).stages] == ["align", "lora_warmup"]


def test_a_stage_added_by_name_runs_last(tmp_path: Path) -> None:
    added = shown(r"'\+curriculum\.stages\.\w+=[^`]+'")
    with pytest.raises(ConfigError, match=r"curriculum\.stages\.multitask: .*steps=N"):
        validate(compose([added], output_dir=tmp_path))  # multitask runs to the end otherwise
    length = shown(r"curriculum\.stages\.multitask\.steps=2000")
    cfg = compose([added, length], output_dir=tmp_path)
    validate(cfg)
    stages = instantiate(cfg.curriculum).stages
    assert [s.name for s in stages] == ["align", "lora_warmup", "multitask", "ic_only"]
    assert (stages[-1].trainable, stages[-1].tasks) == (["lora"], {"ic": 1.0})
    assert (stages[-2].steps, stages[-1].steps) == (2000, 500)


def test_hydra_keeps_a_backslash_n_on_the_command_line() -> None:
    """Why the README does not show ``'prompt_template="...\\n..."'``: it passes ``\\`` ``n``."""
    cfg = compose(['prompt_template="<audio>{audio}</audio>\\n{instruction}"'])
    assert cfg.prompt_template == "<audio>{audio}</audio>\\n{instruction}"


def test_bash_dollar_quoting_passes_a_line_break() -> None:
    token = re.search(r"\$'prompt_template=[^']*'", README).group(0)
    argument = subprocess.run(
        ["bash", "-c", f"printf '%s' {token}"], capture_output=True, text=True, check=True
    ).stdout
    assert compose([argument]).prompt_template == "<audio>{audio}</audio>\n{instruction}"


def test_a_yaml_experiment_of_your_own_gives_a_line_break(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = re.search(r"`(my_conf/experiment/\w+\.yaml)`", README).group(1)
    block = README.split(f"`{name}`", 1)[1]
    yaml_text = re.search(r"```yaml\n(.*?)```", block, re.S).group(1)
    command = re.search(r"```bash\n(speechllm-train [^\n]*)\n```", block).group(1)
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_text(yaml_text)
    monkeypatch.chdir(tmp_path)  # file://my_conf is relative to where the command runs
    overrides = [a for a in shlex.split(command)[1:] if a != "..."]
    cfg = compose(overrides, output_dir=tmp_path / "run")
    assert cfg.prompt_template == "<audio>{audio}</audio>\n{instruction}" and cfg.chat_template
    assert str(cfg.llm.name_or_path).endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    validate(cfg)
