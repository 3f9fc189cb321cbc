"""recipes/synthetic_real/ctc_path.py: the aligner's own transcript per split, and the README
table its committed result generates."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.tiny_run import TinyRun

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "synthetic_real"
sys.path.insert(0, str(RECIPE))

import ctc_path  # noqa: E402


def test_each_model_needs_its_own_name() -> None:
    with pytest.raises(SystemExit):
        ctc_path.parse_args(["a", "b", "--names", "only-one"])


def test_a_model_without_an_aligner_is_refused_by_name(tiny_run: TinyRun, tmp_path: Path) -> None:
    for split in ctc_path.SPLITS:  # the tiny run's test lines stand in for each split
        shutil.copy(tiny_run.test, tmp_path / f"{split}.jsonl")
    with pytest.raises(SystemExit, match="has no CTC aligner"):
        ctc_path.main([str(tiny_run.export), "--data", str(tmp_path), "--threads", "1"])


def test_readme_table_and_prose_come_from_the_committed_result() -> None:
    result = json.loads((RECIPE / "results" / "ctc_path.json").read_text())
    readme = (REPO / "README.md").read_text()
    start, end = "<!-- ctc-path-table:start -->\n", "<!-- ctc-path-table:end -->"
    block = readme.split(start)[1].split(end)[0]
    assert block == ctc_path.table(result) + "\n"
    before, realigned, after = result["models"].values()
    prose = " ".join(readme.split())
    assert f"even in voices it has heard, at {before['dev']:.1f} % WER" in prose
    llm = {
        name: json.loads((RECIPE / "results" / f"{name}.json").read_text())["tasks"]["asr"]["wer"]
        for name in ("long_ctc4", "long_ctc5")
    }
    assert (
        f"({llm['long_ctc4']:.1f} % on the test clips, where its path scores {before['test']:.1f})"
    ) in prose
    assert (
        f"Its path scores {after['test']:.1f} % on the test clips (the 750 steps' 0.3 of CTC loss "
        f"moved it from {realigned['test']:.1f}), and the LLM reading it {llm['long_ctc5']:.1f}"
    ) in prose
    assert llm["long_ctc5"] < after["test"] * 2 / 3 + 0.5  # "mends a third of the path's errors"
    assert before["train"] < before["dev"] / 3 and realigned["dev"] < before["dev"]
    assert after["test"] < before["test"]
