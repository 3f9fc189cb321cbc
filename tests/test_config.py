"""Every shipped config composes and passes the checks, without building anything."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from speechllm.config import CONF_DIR, ConfigError, compose, validate
from speechllm.models import components

GROUPS = [
    "encoder",
    "llm",
    "lora",
    "downsampler",
    "curriculum",
    "data",
    "trainer",
    "logger",
    "callbacks",
]
TEXT_EXPERIMENTS = sorted(  # speechllm-train-text's: they pick a conf/text option
    p.stem for p in (CONF_DIR / "experiment").glob("*.yaml") if "override /text:" in p.read_text()
)
EXPERIMENTS = sorted(
    p.stem for p in (CONF_DIR / "experiment").glob("*.yaml") if p.stem not in TEXT_EXPERIMENTS
)
# values for the ??? of the "bring your own" options
FILLED = {
    "encoder.name_or_path": "x",
    "llm.name_or_path": "y",
    "data.train_manifests": ["m.jsonl"],
    "data.train_shards": "shards",
    "data.train_datasets.asr.path": "parquet",
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_validates(group: str, option: str, tmp_path: Path) -> None:
    cfg = compose([f"{group}={option}"], output_dir=tmp_path)
    for key in OmegaConf.missing_keys(cfg):
        OmegaConf.update(cfg, key, FILLED[key])
    validate(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment: str, tmp_path: Path) -> None:
    cfg = compose(
        [f"experiment={experiment}", "data.train_manifests=[m.jsonl]"], output_dir=tmp_path
    )
    validate(cfg)
    # its export's config.json will load: the model names only allow-listed components
    components.check(OmegaConf.to_container(cfg.module.model, resolve=True), experiment)


@pytest.mark.parametrize("option", options("text"))
def test_every_text_option_composes_and_validates(option: str, tmp_path: Path) -> None:
    validate(compose([f"text={option}"], output_dir=tmp_path, config_name="train_text"))


@pytest.mark.parametrize("experiment", TEXT_EXPERIMENTS)
def test_every_text_experiment_composes_and_validates(experiment: str, tmp_path: Path) -> None:
    cfg = compose([f"experiment={experiment}"], output_dir=tmp_path, config_name="train_text")
    validate(cfg)
    components.check(OmegaConf.to_container(cfg.module.model, resolve=True), experiment)


def test_text_options_set_their_trainer(tmp_path: Path) -> None:
    """conf/text comes after conf/trainer in train_text's defaults, so its settings win."""
    cfg = compose(output_dir=tmp_path, config_name="train_text")
    assert cfg.trainer.max_steps == 500 and cfg.trainer.use_distributed_sampler


def test_typo_in_a_key_names_the_key(tmp_path: Path) -> None:
    cfg = compose(["+downsampler.stride=[2]"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"downsampler\.stride: .*did you mean 'strides'"):
        validate(cfg)


def test_unknown_target_is_named(tmp_path: Path) -> None:
    cfg = compose(["encoder._target_=speechllm.models.NoSuchEncoder"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"encoder\._target_: cannot import"):
        validate(cfg)


def test_stage_with_unknown_task_or_adapter_is_named(tmp_path: Path) -> None:
    cfg = compose(["+curriculum.stages.align.tasks.asrr=1.0"], output_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"curriculum\.stages\.align\.tasks: unknown tasks \['asrr'\]"
    ):
        validate(cfg)
    cfg = compose(["curriculum.stages.lora_warmup.trainable=[lora.domain]"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match="adapter 'domain' is not declared"):
        validate(cfg)


def test_missing_value_is_named(tmp_path: Path) -> None:
    cfg = compose(["encoder=pretrained"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match="encoder.name_or_path"):
        validate(cfg)


def test_package_data_ships_every_config_group() -> None:
    """A wheel carries ``speechllm/conf`` (the checkout's link to ``conf/``): every yaml under it
    must match the package-data globs, or an installed ``speechllm-train`` misses that file."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    assert CONF_DIR.resolve() == (root / "conf").resolve()
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["speechllm"]
    package = CONF_DIR.parent
    shipped = {p for pattern in globs for p in package.glob(pattern)}
    assert set(CONF_DIR.rglob("*.yaml")) <= shipped


def test_text_manifests_are_checked_before_a_fit(tmp_path: Path) -> None:
    from speechllm.config import check_manifests

    train = tmp_path / "train.jsonl"
    train.write_text("")
    fed = [f"data.train_manifests=[{train}]", "data.val_manifests=[]"]
    missing = compose([*fed, f"data.text_manifests=[{tmp_path}/qa.jsonl]"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"data\.text_manifests: .*qa\.jsonl does not exist"):
        check_manifests(missing)
    # a stage may weigh the text task like any other, once there are text items to draw
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"instruction": "Name a colour.", "target": "blue"}\n')
    weighed = [*fed, "+curriculum.stages.align.tasks.text=0.5"]
    validate(compose([*weighed, f"data.text_manifests=[{qa}]"], output_dir=tmp_path))
    with pytest.raises(ConfigError, match=r"align\.tasks: 'text' has weight 0.5 but data\.text"):
        validate(compose(weighed, output_dir=tmp_path))


def test_sharded_data_refuses_text_manifests(tmp_path: Path) -> None:
    cfg = compose(
        ["data=shar", "data.train_shards=shards", "+data.text_manifests=[qa.jsonl]"],
        output_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match="ShardedDataModule has no parameter 'text_manifests'"):
        validate(cfg)
