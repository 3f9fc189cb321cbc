"""The linear probe on pooled encoder features (recipes/synthetic_real/label_probe.py): it
separates what is separable and no more, reads each task's lines as asked, and the README's
table is the one its committed results JSON generates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "synthetic_real"
sys.path.insert(0, str(RECIPE))

from label_probe import FEATURES, lines, table, uar  # noqa: E402


def test_the_probe_scores_separable_labels_perfectly_and_noise_near_chance() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b"] * 100
    shifted = rng.normal(size=(200, 8)) + np.array([[4.0] if y == "a" else [-4.0] for y in labels])
    assert uar((shifted[:100], labels[:100]), (shifted[100:], labels[100:])) == 100.0
    noise = rng.normal(size=(200, 8))
    assert 30 < uar((noise[:100], labels[:100]), (noise[100:], labels[100:])) < 70


def test_lines_takes_the_first_lines_of_each_task_asked(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    rows = [
        {"id": str(i), "task": t, "audio": f"{i}.flac", "target": "x", "duration": 1.0}
        for i, t in enumerate(["gr", "gr", "ac", "gr", "gr", "sc", "ac"])
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    picked = lines(manifest, ["gr", "ac"], 2)
    assert [Path(r.audio).name for r in picked] == ["0.flac", "1.flac", "2.flac", "6.flac"]
    assert len(lines(manifest, ["gr"], None)) == 4


def test_readme_probe_table_is_generated_from_the_committed_result() -> None:
    result = json.loads((RECIPE / "results" / "label_probe.json").read_text())
    for key in ("command", "date", "commit", "machine"):
        assert result[key]
    assert all(set(r["probe"]) == set(FEATURES) for r in result["tasks"].values())
    readme = (REPO / "README.md").read_text()
    start, end = "<!-- label-probe-table:start -->\n", "\n<!-- label-probe-table:end -->"
    assert readme.split(start)[1].split(end)[0] == table(result)
