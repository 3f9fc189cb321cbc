"""The van Aken et al. (2021) clinical outcome CSVs -> text classification manifests.

The files are built here with the layout their task scripts write (``save_mimic_split_patient_
wise``: quoted, lower-case ``id``, ``text`` and the label column; ``short_codes`` and ``labels``
comma-joined, ``hospital_expire_flag`` 0/1, ``los_label`` 0-3, floats once pandas saw a NaN).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from speechllm.cli.data import main as data_main
from speechllm.data.errors import ManifestError
from speechllm.data.text import TextClassificationData, read_lines
from speechllm.data.text_classification import read_text_examples
from speechllm.importers.clinical_outcomes import to_manifests

NOTE = 'CHIEF COMPLAINT: chest pain\n\nPRESENT ILLNESS: {n} year old, "quoted", comma, text'
ROWS = {  # split -> (id, label value) per row
    "DIA_GROUPS_3_DIGITS": ("short_codes", {"train": [(11, "401,428"), (12, "V45,401")],
                                            "val": [(21, "250")], "test": [(31, "428,428")]}),
    "PRO_PLUS": ("labels", {"train": [(11, "396,3961,bypass")], "val": [(21, "966")],
                            "test": [(31, "396")]}),
    "MP_IN": ("hospital_expire_flag", {"train": [(11, "0"), (13, "1.0")], "val": [(21, "0")],
                                       "test": [(31, "1")]}),
    "LOS_WEEKS": ("los_label", {"train": [(11, "2"), (13, "0.0")], "val": [(21, "3")],
                                "test": [(31, "1")]}),
}  # fmt: skip


def write_task(folder: Path, prefix: str, column: str, rows: dict, tag: str = "_adm") -> None:
    for split, values in rows.items():
        with open(folder / f"{prefix}{tag}_{split}.csv", "w", newline="") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)
            writer.writerow(["id", "text", column])
            writer.writerows([(i, NOTE.format(n=i), v) for i, v in values])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "mimic_tasks"
    out.mkdir()
    for prefix, (column, rows) in ROWS.items():
        write_task(out, prefix, column, rows)
    write_task(out, "MP_IN", "hospital_expire_flag", {"train": [(99, "1")]}, tag="")  # discharge
    return out


def test_every_task_and_split_becomes_a_manifest(folder: Path, tmp_path: Path) -> None:
    counts = to_manifests(folder, tmp_path / "out")
    out = tmp_path / "out"
    assert counts["diagnoses/train.jsonl"] == 2 and counts["procedures_plus/dev.jsonl"] == 1
    dia = read_text_examples([out / "diagnoses" / "train.jsonl"])
    assert [(e.id, e.labels) for e in dia] == [
        ("diagnoses-11", ("401", "428")),
        ("diagnoses-12", ("V45", "401")),
    ]
    assert dia[0].text == NOTE.format(n=11)  # newlines, quotes and commas intact
    assert read_text_examples([out / "diagnoses" / "test.jsonl"])[0].labels == ("428",)
    mortality = read_text_examples([out / "mortality" / "train.jsonl"])
    assert [e.labels for e in mortality] == [("0",), ("1",)]  # "1.0" read as 1
    los = read_text_examples([out / "length_of_stay" / "train.jsonl"])
    assert [e.labels for e in los] == [("2",), ("0",)]
    sets = json.loads((out / "label_sets.json").read_text())
    assert sets["diagnoses"] == ["250", "401", "428", "V45"]  # every split's codes
    assert sets["mortality"] == ["0", "1"] and sets["length_of_stay"] == ["0", "1", "2", "3"]
    assert sets["procedures_plus"] == ["396", "3961", "966", "bypass"]
    corpus = read_lines(out / "domain_text.txt")  # the train notes, each once, on one line
    assert len(corpus) == 3 and all("\n" not in line for line in corpus)
    assert not any("99 year" in line or "21 year" in line for line in corpus)
    # the manifests train a classifier as they are
    data = TextClassificationData(
        [str(out / t / "train.jsonl") for t in ("diagnoses", "mortality")],
        [str(out / "diagnoses" / "dev.jsonl")],
        str(out / "label_sets.json"),
    )
    assert data.label_sets()["mortality"] == ["0", "1"]


def test_the_discharge_files_are_their_own_import(folder: Path, tmp_path: Path) -> None:
    assert to_manifests(folder, tmp_path / "d", admission=False) == {
        "mortality/train.jsonl": 1,
        "domain_text.txt": 1,
    }


@pytest.mark.parametrize(
    "column,value,reason",
    [("wrong_column", "0", "missing_field"), ("hospital_expire_flag", "2", "bad_label")],
)
def test_a_bad_file_names_file_and_line(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    write_task(tmp_path, "MP_IN", column, {"train": [(1, "0"), (2, value)]})
    with pytest.raises(ManifestError) as caught:
        to_manifests(tmp_path, tmp_path / "out")
    assert caught.value.reason == reason and caught.value.source.endswith("MP_IN_adm_train.csv")
    assert caught.value.line == (1 if reason == "missing_field" else 5)  # notes span 3 lines


def test_no_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="DIA_GROUPS_3_DIGITS_adm_train.csv"):
        to_manifests(tmp_path, tmp_path / "out")


def test_the_command_line(folder: Path, tmp_path: Path, capsys) -> None:
    assert data_main(["import", "clinical-outcomes", str(folder), str(tmp_path / "o")]) == 0
    assert "diagnoses/train.jsonl: 2 line(s)" in capsys.readouterr().out
