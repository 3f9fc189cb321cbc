"""speechllm-eval checkpoint=PATH manifest=PATH: decode, score each task, write a report.

Only :func:`main` knows about Hydra's command line; tests and notebooks call :func:`run`.
"""

from __future__ import annotations

from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig

from speechllm.config import CONF_DIR, validate
from speechllm.evaluation.report import split_table, task_table
from speechllm.evaluation.run import evaluate
from speechllm.inference import load_model


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.manifest``; returns the ``metrics.json`` document."""
    validate(cfg)
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(cfg.checkpoint, device)
    manifests = cfg.manifest
    manifests = list(manifests) if isinstance(manifests, ListConfig) else [manifests]
    return evaluate(
        model,
        [str(m) for m in manifests],
        cfg.out,
        instantiate(cfg.decoding),
        instruction_split=cfg.instruction_split,
        max_batch_seconds=cfg.max_batch_seconds,
        limit=cfg.limit,
        curves_csv=cfg.curves,
        num_workers=cfg.num_workers,
    )


@hydra.main(config_path=str(CONF_DIR), config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Evaluate a trained speech LLM; see ``--help`` for the options, ``--cfg job`` for values."""
    metrics = run(cfg)
    print(f"\n{task_table(metrics['tasks'])}\n\n{split_table(metrics['instruction_splits'])}")
    print(f"\nreport: {cfg.out}/report.md")


if __name__ == "__main__":
    main()
