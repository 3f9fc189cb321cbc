"""speechllm-train-text: step one of two-step PEFT, a domain adapter trained on text alone.

    speechllm-train-text corpus=data/clinical/domain_text.txt trainer.max_steps=500

The adapter ends up in ``<run dir>/adapters/<adapter>/`` (a standard peft folder), which step
two loads with ``two_step.domain_adapter_path=...`` (``conf/experiment/two_step_peft.yaml``).
This file parses the command line; tests and recipes call
:func:`speechllm.training.train.train_text`.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig

from speechllm._warnings import quiet_known_warnings
from speechllm.config import CONF_DIR, config_errors, run_hydra

log = logging.getLogger(__name__)


@hydra.main(config_path=str(CONF_DIR), config_name="train_text", version_base="1.3")
def _main(cfg: DictConfig) -> Any:
    from speechllm.training.train import train_text

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
