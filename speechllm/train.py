"""speechllm-train: compose the Hydra config, check it, build everything in order, fit.

Only :func:`main` knows about Hydra's command line; tests and notebooks call :func:`train`.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from speechllm.config import CONF_DIR, validate
from speechllm.data.features import Featurizer
from speechllm.models.pretrained import ModelRecipe
from speechllm.training.resume import resume_point
from speechllm.training.trainer import build_trainer, fit

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Module, data module and trainer (with callbacks and loggers), from a checked config."""
    validate(cfg)
    L.seed_everything(cfg.seed, workers=True)
    # the recipe goes into every checkpoint: bases built from a config (tiny) are random, and
    # its seed rebuilds them identically on export
    recipe = ModelRecipe(OmegaConf.to_container(cfg.module.model, resolve=True), cfg.seed)
    module = instantiate(cfg.module, model=recipe.build(), recipe=recipe)
    encoder = module.model.encoder
    featurizer = Featurizer(encoder.feature_extractor, whole_windows=not encoder.real_length)
    datamodule = instantiate(cfg.data, featurizer=featurizer)
    trainer = build_trainer(cfg, [instantiate(cfg.curriculum)])
    # the run's whole resolved config, whatever the entry point (Hydra writes .hydra/ only
    # under main()): CSVLogger puts it in hparams.yaml beside metrics.csv
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return module, datamodule, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit from ``cfg``, continuing the run folder's run (``cfg.resume``, ``cfg.ckpt_path``).

    Returns the final metrics.
    """
    start = resume_point(cfg.paths.output_dir, cfg.get("resume", "auto"), cfg.get("ckpt_path"))
    return fit(*build(cfg), start=start)


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> Any:
    """Train a speech LLM; see ``--help`` for the config groups and ``--cfg job`` for values."""
    metrics = train(cfg)
    log.info("final metrics: %s", metrics)
    return metrics.get("val/loss")


if __name__ == "__main__":
    main()
