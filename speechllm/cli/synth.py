"""``speechllm-synth``: build the offline synthetic multitask speech benchmark.

speechllm-synth out=data/synth preset=small seed=0
speechllm-synth out=/tmp/bench preset=tiny n_train=200 workers=1
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from speechllm.data.synth import generate


@hydra.main(config_path="pkg://speechllm.data.synth.conf", config_name="synth", version_base="1.3")
def main(cfg: DictConfig) -> None:
    report = generate(OmegaConf.to_container(cfg, resolve=True))
    print(
        f"{sum(report.items.values())} utterances ({report.written} written, {report.skipped} "
        f"reused), {report.audio_hours:.2f} h of audio in {report.seconds:.0f} s -> {cfg.out}"
    )
    for name, count in report.lines.items():
        print(f"  {name}.jsonl: {count} lines")


if __name__ == "__main__":
    main()
