"""The public SpeechVerse recipe end to end on a tiny stand-in of its eight corpora, laid out as
the releases are (tests/recipes/speechverse_corpora.py): build.py writes train, dev and test for
all eleven tasks, no speaker or recording crosses splits, and ``speechllm-eval
benchmark=speechverse`` turns the test sets into the paper's table, the one the README shows from
the committed stand-in run. (The experiment config itself runs at tiny size in
tests/test_recipes.py, like every other.)

Regenerate the committed stand-in (results/standin.json, then the README table from it)::

    SPEECHVERSE_STANDIN_WRITE=1 pytest tests/recipes/test_speechverse_public.py -k standin
"""

from __future__ import annotations

import datetime
import importlib.util
import itertools
import json
import os
import platform
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from speechllm.cli.eval import run
from speechllm.config import compose
from speechllm.data.manifest import read_manifest
from speechllm.evaluation.speechverse import GROUPS, TEST_SETS, suite_table
from speechllm.models.tiny import save_tiny_export
from tests.recipes import speechverse_corpora

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "speechverse_public"
STANDIN = RECIPE / "results" / "standin.json"
MIXTURES = 40  # sc: 40 training mixtures, 2 in dev and 2 in test


def _build_module():
    spec = importlib.util.spec_from_file_location("speechverse_public_build", RECIPE / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The stand-in corpora built by build.py: (output folder, lines per split and task)."""
    root = tmp_path_factory.mktemp("speechverse")
    corpora = speechverse_corpora.write_corpora(root / "corpora", root / "scratch")
    out = root / "data"
    argv = ["--corpora", str(corpora), "--out", str(out), "--mixtures", str(MIXTURES)]
    return out, _build_module().main(argv)


def test_build_writes_train_dev_and_test_of_every_task(built, capsys) -> None:
    out, counts = built
    tasks = _build_module().PAPER_TASKS
    assert {split: [t for t in tasks if not counts[split][t]] for split in counts} == {
        "train": [], "dev": [], "test": []
    }  # fmt: skip
    assert counts["test"]["asr"] == 12 and counts["test"]["sc"] == MIXTURES // 20
    assert counts["test"]["er"] == 4 * 2  # actors 21-24, the song clip left out
    assert counts["test"]["ac"] == 6  # one speaker per first language
    assert counts["test"]["kws"] == 3  # silence left out; the test archive's _unknown_ word kept
    for test_set in TEST_SETS:  # what benchmark=speechverse reads
        assert read_manifest(out / test_set.manifest)
    test = read_manifest(out / "test.jsonl")
    assert len({e.id for e in test}) == len(test) and all(Path(e.audio).is_file() for e in test)


def _lines_by_split(out: Path) -> dict[str, dict[str, list]]:
    lines: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for split in ("train", "dev", "test"):
        for entry in read_manifest(out / f"{split}.jsonl"):
            lines[entry.task][split].append(entry)
    return lines


def test_no_speaker_or_recording_crosses_splits(built) -> None:
    out, _ = built
    lines = _lines_by_split(out)
    for task, by_split in lines.items():
        for a, b in itertools.combinations(("train", "dev", "test"), 2):
            recordings = [{(e.audio, e.offset) for e in by_split[s]} for s in (a, b)]
            assert not recordings[0] & recordings[1], (task, a, b)
            speakers = [{e.meta["speaker"] for e in by_split[s] if "speaker" in e.meta}
                        for s in (a, b)]  # fmt: skip
            assert not speakers[0] & speakers[1], (task, a, b)
    assert {e.meta["speaker"] for e in lines["er"]["test"]} == {
        f"ravdess-{actor}" for actor in ("21", "22", "23", "24")
    }
    assert {e.meta["speaker"] for e in lines["ac"]["test"]} == set(
        _build_module().L2ARCTIC_HELDOUT["test"]
    )
    musan_files = {s: {Path(e.audio).name for e in lines["sns"][s]} for s in ("dev", "test")}
    assert all(musan_files.values())  # the hash gives both held-out splits files
    for split in ("train", "dev", "test"):  # derived sets: only their own split's recordings
        asr = {e.id for e in lines["asr"][split]}
        assert {e.id.removesuffix("-kwe") for e in lines["kwe"][split]} <= asr
        sources = {s for e in lines["sc"][split] for s in e.meta["sources"]}
        assert sources and sources <= asr, split
        assert all(e.id.startswith(f"mix-{split}-") for e in lines["sc"][split])


def test_musan_split_is_a_salted_hash_of_the_path_inside_musan() -> None:
    build = _build_module()
    files = [f"speech/librivox/speech-librivox-{i:04d}.wav" for i in range(2000)]
    shares = {
        split: sum(build.musan_split(f) == split for f in files) / 2000 for split in build.SPLITS
    }
    assert shares["dev"] == pytest.approx(0.1, abs=0.02)
    assert shares["test"] == pytest.approx(0.1, abs=0.02)
    assert build.musan_split(files[0]) == build.musan_split(files[0])


def test_missing_corpora_are_named_and_the_rest_is_built(tmp_path: Path, capsys) -> None:
    corpora, out = tmp_path / "corpora", tmp_path / "out"
    speechverse_corpora.ravdess(corpora)
    counts = _build_module().main(["--corpora", str(corpora), "--out", str(out)])
    printed = capsys.readouterr()
    assert (counts["train"]["er"], counts["dev"]["er"], counts["test"]["er"]) == (36, 4, 8)
    assert "missing" in printed.err + printed.out
    assert "no training lines yet for: asr, st, ic, sf, kws, kwe, asc, ac, sc, sns" in printed.out


def test_the_experiment_reads_the_built_manifests() -> None:
    cfg = compose(["experiment=speechverse_public"])
    assert list(cfg.data.train_manifests) == ["data/speechverse_public/train.jsonl"]
    assert list(cfg.data.test_manifests) == ["data/speechverse_public/test.jsonl"]
    assert set(cfg.curriculum.stages.multitask.tasks) == set(_build_module().PAPER_TASKS)


def _standin_result(suite: dict) -> dict:
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    return {
        "note": "synthetic stand-in: tiny noise corpora laid out as the releases "
        "(tests/recipes/speechverse_corpora.py), an untrained tiny model; not a result",
        "command": "SPEECHVERSE_STANDIN_WRITE=1 pytest tests/recipes/test_speechverse_public.py "
        "-k standin",
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "machine": f"{platform.machine()} CPU, {platform.system()}",
        **suite,
    }


def _without_scores(rows: list[dict]) -> list[dict]:
    return [{k: (v["n"] if isinstance(v, dict) else v) for k, v in row.items()} for row in rows]


def test_speechverse_suite_on_the_standin(built, tmp_path: Path, capsys) -> None:
    data, _ = built
    export = save_tiny_export(tmp_path / "export")
    overrides = [f"checkpoint={export}", "benchmark=speechverse", f"data_dir={data}",
                 f"out={tmp_path / 'eval'}", "device=cpu", "num_workers=0",
                 "decoding.max_new_tokens=6"]  # fmt: skip
    suite = run(compose(config_name="eval", overrides=overrides))
    assert json.loads((tmp_path / "eval" / "suite.json").read_text()) == suite
    assert suite["missing"] == []
    assert [row["task"] for row in suite["rows"]] == ["asr", "asr"] + [
        t for ts in list(GROUPS.values())[1:] for t in ts
    ]  # LibriSpeech test-clean and test-other, then one set per task
    for row in suite["rows"]:
        assert row["seen"]["n"] == row["heldout"]["n"] > 0, row
        assert row["seen"]["value"] is not None and row["heldout"]["value"] is not None, row
    slurp = json.loads((tmp_path / "eval" / "slurp" / "metrics.json").read_text())
    assert set(slurp["tasks"]) == {"ic", "sf"}  # each set scored by evaluate(), its own report
    predictions = (tmp_path / "eval/slurp/predictions.jsonl").read_text().splitlines()
    splits = [json.loads(line)["instruction_split"] for line in predictions]
    assert splits.count("heldout") == splits.count("seen") == len(splits) // 2
    table = suite_table(suite)
    assert table.splitlines()[0] == "| group | task | test set | metric | n | seen | held-out |"
    assert (tmp_path / "eval" / "suite.md").read_text().endswith(table + "\n")
    if os.environ.get("SPEECHVERSE_STANDIN_WRITE"):
        STANDIN.parent.mkdir(exist_ok=True)
        STANDIN.write_text(json.dumps(_standin_result(suite), indent=2) + "\n")
    committed = json.loads(STANDIN.read_text())
    assert _without_scores(committed["rows"]) == _without_scores(suite["rows"])


def test_suite_needs_a_built_folder(tmp_path: Path) -> None:
    base = ["checkpoint=unused", "benchmark=speechverse", f"out={tmp_path}", "device=cpu"]
    with pytest.raises(ValueError, match="give data_dir=DIR"):
        run(compose(config_name="eval", overrides=base))


def test_readme_table_is_the_committed_standin() -> None:
    result = json.loads(STANDIN.read_text())
    for key in ("note", "command", "date", "commit", "machine"):
        assert result[key]
    readme = (RECIPE / "README.md").read_text()
    start, end = "<!-- standin-table:start -->\n", "\n<!-- standin-table:end -->"
    assert readme.split(start)[1].split(end)[0] == suite_table(result)
