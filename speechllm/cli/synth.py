"""``speechllm-synth``: build the offline synthetic multitask speech benchmark.

speechllm-synth out=data/synthetic_small preset=small seed=0
speechllm-synth out=/tmp/bench preset=tiny n_train=200 workers=1
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from speechllm._warnings import quiet_known_warnings
from speechllm.config import run_hydra


@hydra.main(config_path="pkg://speechllm.synth.conf", config_name="synth", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    from speechllm.synth import generate  # after --help, which needs none of it

    report = generate(OmegaConf.to_container(cfg, resolve=True))
    print(
        f"{sum(report.items.values())} utterances ({report.written} written, {report.skipped} "
        f"reused), {report.audio_hours:.2f} h of audio in {report.seconds:.0f} s -> {cfg.out}"
    )
    for name, count in report.lines.items():
        print(f"  {name}.jsonl: {count} lines")


def main() -> None:
    """Entry point of ``speechllm-synth``."""
    quiet_known_warnings()
    run_hydra(_main, "speechllm-synth")


if __name__ == "__main__":
    main()
