"""SpeechVerse's table on public data: ``speechllm-eval benchmark=speechverse data_dir=DIR``.

``DIR`` is the folder ``recipes/speechverse_public/build.py`` wrote; each test set of
:data:`TEST_SETS` is one of its manifests. Each is evaluated by
:func:`~speechllm.evaluation.run.evaluate` (its report in ``out/<set>/``) together with a copy
of it prompted from the held-out instruction templates, and the headline metric of each task
(``speechllm.tasks``) on each half becomes one row of one table::

    DIR/<set>.test.jsonl ─┬─────────────────────────────┬─► evaluate() ─► out/<set>/metrics.json
                          └─► held-out copy (ids -heldout,┘      │ instruction_splits
                              meta.instruction_split)            ▼
                   out/suite.json (rows: group, task, test set, metric, seen, held-out)
                   out/suite.md   (the table, rendered from suite.json alone)

Task groups follow the paper's three families: recognition (ASR), spoken language
understanding (ST, IC, SF, KWS, KWE: what was said) and paralinguistics (ER, ASC, AC, SC, SNS:
how, by whom, and whether it is speech). A set the build has not written is named in
``missing`` and its rows stay empty, so a mixture built in parts is evaluated in parts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechllm.data.instructions import write_heldout_copy
from speechllm.evaluation.decoding import DecodingConfig
from speechllm.evaluation.report import DECIMALS
from speechllm.evaluation.run import evaluate
from speechllm.models.speech_llm import SpeechLLM
from speechllm.tasks import get_task

NAME = "speechverse"
"""The suite's ``benchmark=`` name."""

GROUPS: dict[str, tuple[str, ...]] = {
    "ASR": ("asr",),
    "SLU": ("st", "ic", "sf", "kws", "kwe"),
    "Paralinguistics": ("er", "asc", "ac", "sc", "sns"),
}
"""The table's task groups, in row order."""


@dataclass(frozen=True)
class TestSet:
    """One test manifest of the built recipe folder."""

    name: str
    """Its report folder under ``out`` and its key in ``suite.json``."""
    manifest: str
    """File name under ``data_dir``, as ``recipes/speechverse_public/build.py`` writes it."""
    title: str
    """The table's test set cell."""
    tasks: tuple[str, ...]


TEST_SETS = (
    TestSet("librispeech_test_clean", "librispeech.test-clean.jsonl", "LibriSpeech test-clean",
            ("asr",)),
    TestSet("librispeech_test_other", "librispeech.test-other.jsonl", "LibriSpeech test-other",
            ("asr",)),
    TestSet("covost2", "covost2.test.jsonl", "CoVoST 2 en-de test", ("st",)),
    TestSet("slurp", "slurp.test.jsonl", "SLURP test", ("ic", "sf")),
    TestSet("speech_commands", "speech_commands.test.jsonl", "Speech Commands v0.02 test",
            ("kws",)),
    TestSet("keywords", "keywords.test.jsonl", "LibriSpeech test keywords", ("kwe",)),
    TestSet("ravdess", "ravdess.test.jsonl", "RAVDESS actors 21-24", ("er",)),
    TestSet("slue_voxceleb", "slue_voxceleb.test.jsonl", "SLUE-VoxCeleb test", ("asc",)),
    TestSet("l2arctic", "l2arctic.test.jsonl", "L2-ARCTIC held-out speakers", ("ac",)),
    TestSet("mixtures", "mixtures.test.jsonl", "LibriSpeech test mixtures", ("sc",)),
    TestSet("musan", "musan.test.jsonl", "MUSAN held-out files", ("sns",)),
)  # fmt: skip
"""Every test set, each task's rows in this order."""

METRIC_NAMES = {"wer": "WER ↓", "bleu": "BLEU", "accuracy": "accuracy", "slu_f1": "SLU-F1",
                "f1": "F1", "uar": "UAR"}  # fmt: skip
"""How the table names each headline metric (``↓``: lower is better)."""


def run_suite(
    model: SpeechLLM,
    data_dir: str | Path,
    out_dir: str | Path,
    decoding: DecodingConfig,
    limit: int | None = None,
    normalizer: str | None = None,
    **evaluate_kwargs: Any,
) -> dict[str, Any]:
    """Evaluate ``model`` on every built test set; write ``suite.json`` and ``suite.md``.

    Args:
        model: The speech LLM, on the device to evaluate on.
        data_dir: The folder ``recipes/speechverse_public/build.py`` wrote.
        out_dir: Report folder: ``suite.json``, ``suite.md`` and one folder per test set.
        decoding: Decoding settings.
        limit: Only the first ``limit`` lines of each set (and of its held-out copy).
        normalizer: Transcript normaliser (``None``: ``auto``).
        **evaluate_kwargs: Further :func:`evaluate` arguments.

    Returns:
        The ``suite.json`` document: ``rows`` (one per task and test set) and ``missing``.
    """
    data, out = Path(data_dir), Path(out_dir)
    present = [s for s in TEST_SETS if _has_lines(data / s.manifest)]
    if not present:
        raise ValueError(
            f"data_dir={data}: none of {[s.manifest for s in TEST_SETS]} has lines; build the "
            "test sets with recipes/speechverse_public/build.py"
        )
    splits = {}
    for test_set in present:
        manifest = data / test_set.manifest
        heldout = write_heldout_copy(manifest, out / test_set.name / "heldout_instructions.jsonl")
        doc = evaluate(model, [str(manifest), str(heldout)], out / test_set.name, decoding,
                       limit=limit, normalizer=normalizer or "auto", **evaluate_kwargs)  # fmt: skip
        splits[test_set.name] = doc["instruction_splits"]
    suite = {
        "suite": NAME,
        "rows": _rows(splits),
        "missing": [s.name for s in TEST_SETS if s not in present],
    }
    (out / "suite.json").write_text(json.dumps(suite, indent=2) + "\n")
    (out / "suite.md").write_text(f"# SpeechVerse's tasks\n\n{suite_table(suite)}\n")
    return suite


def _has_lines(manifest: Path) -> bool:
    return manifest.is_file() and any(line.strip() for line in manifest.open(encoding="utf-8"))


def _rows(splits: dict[str, dict[str, dict[str, dict[str, float]]]]) -> list[dict[str, Any]]:
    """One row per task and test set, in :data:`GROUPS` order: each instruction split's lines
    and headline metric (``None`` where the set was not built or the task had no lines)."""
    rows = []
    for group, tasks in GROUPS.items():
        for task in tasks:
            metric = get_task(task).metric
            for test_set in (s for s in TEST_SETS if task in s.tasks):
                by_split = splits.get(test_set.name, {}).get(task, {})
                row = {"group": group, "task": task, "set": test_set.name,
                       "test_set": test_set.title, "metric": metric}  # fmt: skip
                for split in ("seen", "heldout"):
                    scores = by_split.get(split)
                    row[split] = {"n": scores["n"], "value": scores.get(metric)} if scores else None
                rows.append(row)
    return rows


def _cell(scores: dict[str, Any] | None) -> str:
    if scores is None or scores["value"] is None:
        return "-"
    return f"{scores['value']:.{DECIMALS}f}"


def suite_table(suite: dict[str, Any]) -> str:
    """``suite.json``'s rows as the paper's table: a group's name on its first row, then task,
    test set, metric, lines, and the score with seen and with held-out instructions."""
    lines = [
        "| group | task | test set | metric | n | seen | held-out |",
        "|---|---|---|---|---|---|---|",
    ]
    previous = None
    for row in suite["rows"]:
        group = f"**{row['group']}**" if row["group"] != previous else ""
        previous = row["group"]
        n = row["seen"]["n"] if row["seen"] else 0
        metric = METRIC_NAMES.get(row["metric"], row["metric"])
        cells = [group, row["task"].upper(), row["test_set"], metric, str(n),
                 _cell(row["seen"]), _cell(row["heldout"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Scores are percentages; lower is better for WER, higher for the rest."]
    if suite["missing"]:
        lines += ["", f"Not built (no lines in `data_dir`): {', '.join(suite['missing'])}."]
    return "\n".join(lines)
