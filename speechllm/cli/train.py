"""speechllm-train: compose the Hydra config and call :func:`speechllm.training.train.train`
(check it, build everything in order, fit).
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig

from speechllm._warnings import quiet_known_warnings
from speechllm.config import CONF_DIR, config_errors, run_hydra

log = logging.getLogger(__name__)


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _main(cfg: DictConfig) -> Any:
    from speechllm.training.train import train  # after --help, which needs none of it

    with config_errors("speechllm-train", cfg.paths.output_dir):
        metrics = train(cfg)
    log.info("final metrics: %s", metrics)
    return metrics.get("val/loss")


def main() -> Any:
    """Train a speech LLM; see ``--help`` for the config groups and ``--cfg job`` for values."""
    quiet_known_warnings()
    return run_hydra(_main, "speechllm-train")


if __name__ == "__main__":
    main()
