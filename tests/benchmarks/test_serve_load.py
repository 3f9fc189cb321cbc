"""The README's serving load table is the one the committed ``serve_load.json`` renders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from serve_load import readme_table  # noqa: E402


def test_readme_serving_table_is_generated_from_the_committed_result() -> None:
    result = json.loads((REPO / "benchmarks" / "results" / "serve_load.json").read_text())
    assert all(result[key] for key in ("command", "date", "commit", "machine"))
    assert result["lost"] == result["wrong"] == 0
    readme = (REPO / "README.md").read_text()
    start, end = "<!-- serve-table:start -->\n", "\n<!-- serve-table:end -->"
    assert readme.split(start)[1].split(end)[0] == readme_table(result)
