"""Keyword spotting read from gold transcripts (recipes/synthetic_real/kws_probe.py): it pairs
each KWS line with its recording's transcript, its LoRA loop learns the lines it trains on, and
the README's table is the one its committed results JSON generates.

The training test needs SmolLM2 from the package registry; without a registry it skips,
saying so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "synthetic_real"
sys.path.insert(0, str(RECIPE))

from kws_probe import kws_lines, main, table  # noqa: E402

from tests.fetched import fetched  # noqa: E402

SENTENCES = ["the cat sat on the mat", "we meet at the bakery at seven"]


def write_split(path: Path, keywords: list[tuple[int, str, str]]) -> None:
    """An ASR line per recording and a KWS line per (recording, keyword, answer)."""
    rows = [
        {"id": f"r{i}-asr", "audio": f"r{i}.flac", "task": "asr", "target": s, "duration": 1.0}
        for i, s in enumerate(SENTENCES)
    ]
    rows += [
        {"id": f"r{i}-kws-{k}", "audio": f"r{i}.flac", "task": "kws", "target": answer,
         "labels": ["yes", "no"], "meta": {"keyword": k}, "duration": 1.0}
        for i, k, answer in keywords
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_kws_lines_pair_each_keyword_with_its_recordings_transcript(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    write_split(manifest, [(1, "bakery", "yes"), (0, "bakery", "no")])
    with manifest.open("a") as f:  # a KWS line whose recording has no transcript: left out
        f.write(json.dumps({"id": "x", "audio": "x.flac", "task": "kws", "target": "no",
                            "meta": {"keyword": "cat"}, "duration": 1.0}) + "\n")  # fmt: skip
    assert kws_lines(manifest) == [(SENTENCES[1], "bakery", "yes"), (SENTENCES[0], "bakery", "no")]
    assert kws_lines(manifest, 1) == [(SENTENCES[1], "bakery", "yes")]


def test_the_lora_loop_trains_the_answer(tmp_path: Path) -> None:
    """Every answer "yes" (SmolLM2 mostly says "no" zero-shot): a few steps on the answer
    tokens alone turn every test line to "yes"."""
    fetched("smollm2")
    lines = [(0, "cat", "yes"), (0, "mat", "yes"), (1, "seven", "yes"), (1, "bakery", "yes")]
    for split in ("train", "test"):
        write_split(tmp_path / f"{split}.jsonl", lines)
    args = ["--data", str(tmp_path), "--steps", "10", "--batch", "4", "--eval-every", "5"]
    result = main([*args, "--threads", "1"])
    assert [c["step"] for c in result["curve"]] == [0, 5, 10]
    assert result["test_lines"] == result["train_lines"] == 4
    first, last = result["curve"][0], result["curve"][-1]
    assert first["seen"] < 100 and last["seen"] == last["heldout"] == 100.0, result["curve"]


def test_readme_kws_table_is_generated_from_the_committed_result() -> None:
    result = json.loads((RECIPE / "results" / "kws_probe.json").read_text())
    for key in ("command", "date", "commit", "machine"):
        assert result[key]
    readme = (REPO / "README.md").read_text()
    start, end = "<!-- kws-probe-table:start -->\n", "\n<!-- kws-probe-table:end -->"
    assert readme.split(start)[1].split(end)[0] == table(result)


def test_readme_kws_prose_matches_the_committed_results() -> None:
    """Chance up to 100 steps, right from 150; the steps the demo and the better hour gave KWS
    (its weight's share of their multitask stages) fall short of that."""
    import yaml

    curve = {
        c["step"]: c
        for c in json.loads((RECIPE / "results" / "kws_probe.json").read_text())["curve"]
    }
    assert all(max(curve[s]["seen"], curve[s]["heldout"]) < 60 for s in (0, 50, 100))
    assert all(min(c["seen"], c["heldout"]) > 90 for s, c in curve.items() if s >= 150)
    readme = " ".join((REPO / "README.md").read_text().split())
    zero = curve[0]
    assert (
        f"no better than chance ({zero['seen']:.1f} % with the seen wordings, "
        f"{zero['heldout']:.1f} % with the held-out ones)"
    ) in readme
    weights = yaml.safe_load((REPO / "conf" / "mixture" / "synthetic_real.yaml").read_text())
    share = weights["kws"] / sum(weights.values())
    steps = [
        {
            s["stage"]: s["steps"]
            for s in json.loads((RECIPE / "results" / f"{n}.json").read_text())["stages"]
        }["multitask"]
        for n in ("demo", "long_ctc")
    ]
    assert all(n * share < 150 for n in steps)
    assert (
        f"about {steps[0] * share:.0f} of the demo's {steps[0]} multitask steps and about "
        f"{steps[1] * share:.0f} of the better hour's {steps[1]:,} (weight {weights['kws']} of "
        f"{sum(weights.values()):.1f} in"
    ) in readme
