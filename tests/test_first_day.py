"""A new user's first day: defaults that agree, config mistakes that fail at once in one line,
a run folder that the same command finds again (issue 36)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException

import speechllm.training.train
from speechllm.config import (
    CONF_DIR,
    ConfigError,
    check_manifests,
    compose,
    override_hint,
    remove_unused_run_dir,
)

SYNTH_CONF = Path(speechllm.__file__).parent / "synth" / "conf" / "synth.yaml"


def test_bare_synth_writes_what_bare_train_reads(tmp_path: Path) -> None:
    synth_out = yaml.safe_load(SYNTH_CONF.read_text())["out"]
    cfg = compose([], output_dir=tmp_path)
    assert list(cfg.data.train_manifests) == [f"{synth_out}/train.jsonl"]


def test_missing_manifest_fails_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(speechllm.training.train, "build", lambda cfg: pytest.fail("built a model"))
    with pytest.raises(ConfigError) as caught:
        speechllm.training.train.train(compose([], output_dir=tmp_path / "run"))
    message = str(caught.value)
    assert "\n" not in message
    assert "data.train_manifests: data/synthetic_small/train.jsonl does not exist" in message
    assert "speechllm-synth out=data/synthetic_small" in message
    assert not (tmp_path / "run").exists()


def test_manifest_check_names_the_override_for_your_own_data(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text("")
    cfg = compose(
        [f"data.train_manifests=[{train}]", f"data.val_manifests=[{tmp_path}/dev.jsonl]"],
        output_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match=r"data\.val_manifests: .*dev\.jsonl does not exist; "):
        check_manifests(cfg)
    check_manifests(compose([f"data.train_manifests=[{train}]", "data.val_manifests=[]"]))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("downsampler.stride=[2]", "downsampler.stride: no such key; did you mean 'strides'?"),
        ("module.optimizer.weight_decy=0.1", "did you mean 'weight_decay'?"),  # AdamW's
        ("trainer.max_step=3", "did you mean 'max_steps'?"),
    ],
)
def test_override_of_an_unknown_key_says_did_you_mean(override: str, expected: str) -> None:
    with pytest.raises(ConfigCompositionException) as caught:
        compose([override])
    hint = override_hint(caught.value)
    assert hint is not None and expected in hint and "\n" not in hint
    assert f"+{override.split('=')[0]}=" in hint  # how to add a key, if that was meant


def test_override_hint_leaves_other_errors_alone() -> None:
    with pytest.raises(ConfigCompositionException) as caught:
        compose(["encoder=no_such_option"])
    assert override_hint(caught.value) is None


def test_unused_run_dir_removed_used_one_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    fresh = tmp_path / "runs" / "x"
    (fresh / ".hydra").mkdir(parents=True)
    (fresh / "train.log").write_text("")
    used = tmp_path / "runs" / "y"
    (used / ".hydra").mkdir(parents=True)
    (used / "checkpoints").mkdir()
    remove_unused_run_dir(fresh)
    remove_unused_run_dir(used)
    assert not fresh.exists() and used.exists()
    remove_unused_run_dir(used / "checkpoints")  # empty: gone, and runs/y kept (not empty)
    assert (tmp_path / "runs" / "y" / ".hydra").exists()


def test_run_folder_has_no_timestamp() -> None:
    """The same command finds its run folder again, so resume=auto resumes it."""
    train = yaml.safe_load((CONF_DIR / "train.yaml").read_text())
    assert train["hydra"]["run"]["dir"] == "runs/${name}"


def test_pretrained_llm_gets_lora_for_any_architecture(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from speechllm.models.tiny import tiny_llm

    tiny_llm("gpt2").save_base(tmp_path / "gpt2")
    cfg = compose(["llm=pretrained", f"llm.name_or_path={tmp_path / 'gpt2'}"], output_dir=tmp_path)
    llm = instantiate(cfg.llm, _convert_="all")
    llm.attach_adapter("default")
    names = [n for n, _ in llm.model.named_modules() if n.endswith(".lora_A")]
    adapted = {n.removesuffix(".lora_A").rsplit(".", 1)[-1] for n in names}
    assert "c_attn" in adapted  # GPT-2's own attention projection, not Llama's q_proj


def test_every_file_a_config_points_to_exists() -> None:
    """A comment that sends a user to another file sends them somewhere real."""
    root = CONF_DIR.resolve().parent
    named = {
        (path.relative_to(root), ref)
        for path in CONF_DIR.rglob("*.yaml")
        for ref in re.findall(
            r"(?<![\w/])((?:conf|recipes|docs)/[\w/.-]+\.(?:yaml|py|md))", path.read_text()
        )
    }
    assert named, "no references found: the pattern is wrong"
    assert [(str(p), ref) for p, ref in sorted(named) if not (root / ref).exists()] == []
