"""The real-size cost benchmark keeps running: every setup kind at toy size (slow, opt-in)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "real_size.py"


@pytest.mark.slow
def test_real_size_benchmark_runs_at_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "real_size.json"
    setups = [
        "whisper-small+qwen2.5-0.5b:fp32",
        "whisper-large-v3+flan-t5-large:bf16",
        "wavlm-large+llama-3.2-1b:fp32",
    ]
    command = [sys.executable, str(SCRIPT), "--toy", "--steps", "2", "--setups", *setups]
    command += ["--encoder-lengths", "--splice", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert [r["setup"] for r in result["setups"]] == setups
    for r in result["setups"]:
        seconds = r["seconds_per_step"]
        assert all(seconds[k] > 0 for k in ("encoder", "downsampler", "llm_forward", "backward"))
        assert sum(r["share"].values()) == pytest.approx(1.0)
        assert 0 < r["trainable_params"] < r["frozen_params"]
        assert r["peak_rss_mb"] > 0 and r["generate_8_tokens_s"] > 0
    [lengths] = result["encoder_lengths"]
    difference = lengths["hidden_state_difference"]
    assert difference["30s"]["top_relative_l2"] == 0  # a whole window: real length = padded
    assert difference["5s"]["top_relative_l2"] > 0  # a short clip no longer sees padding
    assert result["splice"]["splice_s_per_item"] > 0
