"""``train(cfg)`` and ``train_text(cfg)``: check the config, build everything in order, fit.

``speechllm-train`` and ``speechllm-train-text`` (:mod:`speechllm.cli`) only parse the command
line and call these; tests, recipes and notebooks call them without Hydra.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from omegaconf import DictConfig, OmegaConf

from speechllm.config import check_loggers, check_manifests, validate

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Module, data module and trainer (with callbacks and loggers), from a checked config."""
    # imported here, not at the top: torch and Lightning take seconds to load, and a config
    # that fails its checks (train() runs them first) should fail sooner
    import lightning as L
    from hydra.utils import instantiate

    from speechllm.data.features import Featurizer
    from speechllm.models.pretrained import ModelRecipe
    from speechllm.training.trainer import build_trainer

    _lightning_logs_once()
    validate(cfg)
    L.seed_everything(cfg.seed, workers=True)
    # the recipe goes into every checkpoint: bases built from a config (tiny) are random, and
    # its seed rebuilds them identically on export
    recipe = ModelRecipe(OmegaConf.to_container(cfg.module.model, resolve=True), cfg.seed)
    module = instantiate(cfg.module, model=recipe.build(), recipe=recipe)
    featurizer = Featurizer.for_encoder(module.model.encoder)
    datamodule = instantiate(cfg.data, featurizer=featurizer)
    trainer = build_trainer(cfg, [instantiate(cfg.curriculum)])
    # the run's whole resolved config, whatever the entry point (Hydra writes .hydra/ only
    # under main()): CSVLogger puts it in hparams.yaml beside metrics.csv
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return module, datamodule, trainer


def _lightning_logs_once() -> None:
    """Lightning logs through its own console handler and, when the root logger had handlers as
    it was imported (Hydra's: it is imported after Hydra set logging up), through the root's too:
    every line twice. Keep the root's, so each line shows once, formatted like ours and also in
    the run's log file."""
    if logging.getLogger().hasHandlers() and logging.getLogger("lightning.pytorch").propagate:
        lightning = logging.getLogger("lightning")
        for handler in list(lightning.handlers):
            if type(handler) is logging.StreamHandler:
                lightning.removeHandler(handler)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit from ``cfg``, continuing the run folder's run (``cfg.resume``, ``cfg.ckpt_path``).

    The config, the manifests and the loggers' packages are checked before anything is built
    or read. Returns the final metrics.
    """
    check_manifests(cfg)
    validate(cfg)
    check_loggers(cfg)
    from speechllm.training.resume import resume_point
    from speechllm.training.trainer import fit

    run_dir = cfg.paths.output_dir
    start = resume_point(run_dir, cfg.get("resume", "auto"), cfg.get("ckpt_path"))
    shown = _shown(run_dir)
    if start is None:
        log.info("run folder: %s (a new run; the same command again resumes it)", shown)
    else:
        log.info(
            "run folder: %s (resuming from %s, step %d)", shown, _shown(start.path), start.step
        )
    metrics = fit(*build(cfg), start=start)
    log.info("run folder: %s (checkpoints: %s/checkpoints/last.ckpt)", shown, shown)
    return metrics


def _shown(path: str) -> str:
    """``path`` relative to the working directory when under it: what a user would type."""
    if "://" in str(path):  # an fsspec URL stays as it is
        return str(path)
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def build_text(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Module, data module and trainer (with callbacks and loggers), from a checked config.

    The data module is built first: a classifier's data (``LabelledData``) reads its manifests
    there, and their label sets size the heads (``module.model.label_sets``, unless the config
    gives them), so a bad line fails before the LLM loads. The classifier's recipe (its node
    with those label sets, and the seed) goes into every checkpoint, as ``build`` does for a
    speech LLM.
    """
    import lightning as L  # as in build(): torch loads once the config is known to be sound
    from hydra.utils import instantiate

    from speechllm.models.pretrained import ModelRecipe
    from speechllm.training.trainer import build_trainer

    _lightning_logs_once()
    validate(cfg)
    check_loggers(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    if isinstance(datamodule, LabelledData):
        node = OmegaConf.to_container(cfg.module.model, resolve=True)
        node["label_sets"] = node.get("label_sets") or datamodule.label_sets()
        recipe = ModelRecipe(node, cfg.seed)
        module = instantiate(cfg.module, model=recipe.build(), recipe=recipe)
    else:
        module = instantiate(cfg.module)
    trainer = build_trainer(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return module, datamodule, trainer


@runtime_checkable
class LabelledData(Protocol):
    """A data module that knows each task's label set (``TextClassificationData``)."""

    def label_sets(self) -> dict[str, list[str]]: ...


def train_text(cfg: DictConfig) -> dict[str, float]:
    """Fit a text-only module from ``cfg`` (step one's domain adapter, or a classifier); the
    manifests are checked first. Returns the final metrics."""
    check_manifests(cfg)
    from speechllm.training.trainer import fit

    return fit(*build_text(cfg))
