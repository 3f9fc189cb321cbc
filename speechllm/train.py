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

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Module, data module and trainer (with callbacks and loggers), from a checked config."""
    validate(cfg)
    L.seed_everything(cfg.seed, workers=True)
    module = instantiate(cfg.module)
    module.model_config = {
        "model": OmegaConf.to_container(cfg.module.model, resolve=True),
        "seed": cfg.seed,  # bases built from a config (tiny) are rebuilt identically on export
    }
    featurizer = Featurizer(module.model.encoder.feature_extractor)
    datamodule = instantiate(cfg.data, featurizer=featurizer)
    trainer = build_trainer(cfg, [instantiate(cfg.curriculum)])
    # the run's whole resolved config, whatever the entry point (Hydra writes .hydra/ only
    # under main()): CSVLogger puts it in hparams.yaml beside metrics.csv
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return module, datamodule, trainer


def build_trainer(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> L.Trainer:
    """The trainer with ``extra_callbacks`` and then the config's callbacks, and loggers.

    Hooks run in list order and the curriculum (an extra) swaps the optimizer in
    ``on_train_batch_start``: it must come first, or the LR monitor logs the old stage's rate
    at the new stage's first step. Lightning keeps this order (it only moves checkpoints last).
    """
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    return instantiate(
        cfg.trainer, callbacks=list(extra_callbacks or []) + callbacks, logger=loggers or False
    )


def fit(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    ckpt_path: str | None = None,
) -> dict[str, float]:
    """Fit and return the final logged metrics as floats."""
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit from ``cfg`` (resuming from ``cfg.ckpt_path`` if set); returns the final metrics."""
    return fit(*build(cfg), ckpt_path=cfg.get("ckpt_path"))


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> Any:
    """Train a speech LLM; see ``--help`` for the config groups and ``--cfg job`` for values."""
    metrics = train(cfg)
    log.info("final metrics: %s", metrics)
    return metrics.get("val/loss")


if __name__ == "__main__":
    main()
