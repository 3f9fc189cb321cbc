"""The LLM bootstrap's mixture schedule: copy-heavy first, then every task's text form."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "recipes" / "synthetic_tiny"))

from bootstrap_llm import PROMPT, asr_share, parse_args, text_prompt  # noqa: E402

from speechllm.config import compose  # noqa: E402


def test_share_holds_then_falls_linearly_to_the_final_share() -> None:
    share = asr_share(0.9, 0.3, 0.4)
    assert [share(p) for p in (0.0, 0.2, 0.4)] == [0.9, 0.9, 0.9]
    assert share(0.7) == pytest.approx(0.6)
    assert share(1.0) == pytest.approx(0.3)


def test_defaults_are_the_demo_recipe() -> None:
    args = parse_args(["--out", "x"])
    share = asr_share(args.asr_frac, args.final_asr_frac, args.mix_from)
    assert share(0.0) > 0.8 and share(1.0) < 0.5  # copying first, instructions at the end


def test_text_forms_are_laid_out_as_the_experiment_lays_out_speech() -> None:
    assert compose(["experiment=synthetic_tiny"]).prompt_template == PROMPT
    assert text_prompt("a cat", "Transcribe.") == "<audio>a cat</audio> Transcribe.: "
