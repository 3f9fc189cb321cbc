"""speechllm-train-text: step one of two-step PEFT, a domain adapter trained on text alone.

    speechllm-train-text corpus=data/clinical/domain_text.txt trainer.max_steps=500

The adapter ends up in ``<run dir>/adapters/<adapter>/`` (a standard peft folder), which step
two loads with ``two_step.domain_adapter_path=...`` (``conf/experiment/two_step_peft.yaml``).
Only :func:`main` knows about Hydra's command line; tests and recipes call :func:`train_text`.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from speechllm._warnings import quiet_known_warnings
from speechllm.config import CONF_DIR, check_loggers, config_errors, run_hydra, validate
from speechllm.training.trainer import build_trainer, fit

log = logging.getLogger(__name__)


def build_text(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Module, data module and trainer (with callbacks and loggers), from a checked config."""
    validate(cfg)
    check_loggers(cfg)
    L.seed_everything(cfg.seed, workers=True)
    return instantiate(cfg.module), instantiate(cfg.data), build_trainer(cfg)


def train_text(cfg: DictConfig) -> dict[str, float]:
    """Fit the domain adapter from ``cfg``; returns the final metrics."""
    return fit(*build_text(cfg))


@hydra.main(config_path=str(CONF_DIR), config_name="train_text", version_base="1.3")
def _main(cfg: DictConfig) -> Any:
    with config_errors("speechllm-train-text", cfg.paths.output_dir):
        metrics = train_text(cfg)
    log.info("final metrics: %s", metrics)
    return metrics.get("train/loss")


def main() -> Any:
    """Train a domain LoRA adapter on a text corpus (causal LM, no audio)."""
    quiet_known_warnings()
    return run_hydra(_main, "speechllm-train-text")


if __name__ == "__main__":
    main()
