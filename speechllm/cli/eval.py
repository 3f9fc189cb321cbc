"""speechllm-eval checkpoint=PATH manifest=PATH (or benchmark=NAME, or benchmark=speechverse
data_dir=DIR): decode, score each task, write a report. A text classifier's checkpoint or export
reads text classification manifests and is scored by its heads (AUROC, F1 at a dev threshold).

Only :func:`main` knows about Hydra's command line; tests and notebooks call :func:`run`.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig

from speechllm._warnings import quiet_known_warnings
from speechllm.config import CONF_DIR, ConfigError, config_errors, run_hydra, validate


def _paths(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in (value if isinstance(value, ListConfig) else [value])]


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.manifest`` or ``cfg.benchmark``; returns the
    ``metrics.json`` document (a benchmark's: ``benchmarks.json``; the SpeechVerse suite's:
    ``suite.json``)."""
    validate(cfg)
    if (cfg.manifest is None) == (cfg.benchmark is None):
        raise ConfigError("give either manifest=PATH or benchmark=NAME (see --help)")
    if isinstance(cfg.unseen, bool) or not isinstance(cfg.unseen, int) or cfg.unseen < 0:
        raise ConfigError(
            f"unseen takes a number of recordings (unseen=60; 0: off), got {cfg.unseen!r}"
        )
    if cfg.unseen and cfg.benchmark is not None:
        raise ConfigError("unseen=N asks about a manifest's recordings: give manifest=PATH")
    suite = cfg.benchmark == "speechverse"
    if suite and (cfg.data_dir is None or cfg.benchmark_source is not None):
        raise ConfigError(
            "benchmark=speechverse reads the test sets of a built recipe folder: give "
            "data_dir=DIR (what recipes/speechverse_public/build.py --out wrote), no "
            "benchmark_source"
        )
    # imported here: torch, datasets and the models take seconds to load, --help needs none
    import torch
    from hydra.utils import instantiate

    from speechllm.evaluation.benchmarks import run_benchmark
    from speechllm.evaluation.run import evaluate
    from speechllm.evaluation.speechverse import run_suite
    from speechllm.evaluation.text_classification import evaluate_text_classifier
    from speechllm.models.pretrained import load
    from speechllm.models.text_classifier import TextClassifier

    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load(cfg.checkpoint, device)
    if isinstance(model, TextClassifier):
        if cfg.benchmark is not None or cfg.unseen:
            raise ConfigError("a text classifier is scored on text manifests: give manifest=PATH")
        return evaluate_text_classifier(
            model,
            _paths(cfg.manifest),
            cfg.out,
            dev_manifests=_paths(cfg.dev_manifest),
            batch_size=cfg.batch_size,
            limit=cfg.limit,
            tasks=_paths(cfg.tasks),
        )
    common = {
        "max_batch_seconds": cfg.max_batch_seconds,
        "num_workers": cfg.num_workers,
        "dev_manifests": _paths(cfg.dev_manifest),
    }
    if suite:
        return run_suite(
            model,
            cfg.data_dir,
            cfg.out,
            instantiate(cfg.decoding),
            limit=cfg.limit,
            normalizer=cfg.normalizer,
            **common,
        )
    if cfg.benchmark is not None:
        return run_benchmark(
            model,
            cfg.benchmark,
            cfg.out,
            instantiate(cfg.decoding),
            source=cfg.benchmark_source,
            data_dir=cfg.data_dir,
            limit=cfg.limit,
            normalizer=cfg.normalizer,
            **common,
        )
    return evaluate(
        model,
        _paths(cfg.manifest),
        cfg.out,
        instantiate(cfg.decoding),
        instruction_split=cfg.instruction_split,
        limit=cfg.limit,
        curves_csv=cfg.curves,
        normalizer=cfg.normalizer or "auto",
        tasks=_paths(cfg.tasks),
        anchor=cfg.anchor,
        unseen=cfg.unseen,
        **common,
    )


@hydra.main(config_path=str(CONF_DIR), config_name="eval", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    from speechllm.evaluation.report import split_table, task_table
    from speechllm.evaluation.speechverse import suite_table
    from speechllm.evaluation.text_classification import task_table as text_table
    from speechllm.evaluation.unseen_tasks import unseen_tasks_section

    with config_errors("speechllm-eval", cfg.out):
        metrics = run(cfg)
    if "per_label" in metrics:  # a text classifier
        print(f"\n{text_table(metrics)}\n\nreport: {cfg.out}/report.md")
        return
    if "rows" in metrics:  # the SpeechVerse suite: one table
        print(f"\n{suite_table(metrics)}\n\nreports: {cfg.out}/<set>/report.md, {cfg.out}/suite.md")
        return
    for name, doc in metrics.get("benchmarks", {"": metrics}).items():
        print(f"\n{name}\n{task_table(doc['tasks'])}\n\n{split_table(doc['instruction_splits'])}")
        if "unseen_tasks" in doc:
            print("\n" + unseen_tasks_section(doc["unseen_tasks"], examples=0))
        print(f"\nreport: {cfg.out}/{name + '/' if name else ''}report.md")


def main() -> None:
    """Evaluate a trained speech LLM; see ``--help`` for the options, ``--cfg job`` for values."""
    quiet_known_warnings()
    run_hydra(_main, "speechllm-eval")


if __name__ == "__main__":
    main()
