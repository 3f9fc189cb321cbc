"""metrics.csv survives kills: a growing header never truncates it, a torn last row is dropped."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from speechllm.training.csv_logger import CSVLogger


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def logger(root: Path) -> CSVLogger:
    return CSVLogger(root, name="logs", version="", flush_logs_every_n_steps=1)


def test_a_kill_while_a_new_column_is_added_loses_no_row(tmp_path, monkeypatch) -> None:
    log = logger(tmp_path)
    for step in range(3):
        log.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
    path = tmp_path / "logs" / "metrics.csv"
    assert [r["step"] for r in rows(path)] == ["0", "1", "2"]

    def killed(self, rows):  # the process dies while the rows are written again
        raise KeyboardInterrupt

    monkeypatch.setattr(csv.DictWriter, "writerows", killed)
    with pytest.raises(KeyboardInterrupt):
        log.log_metrics({"val/loss": 2.0}, step=2)  # a new column: the header grows
    assert [r["step"] for r in rows(path)] == ["0", "1", "2"]  # Lightning's left the header only


def test_a_resumed_run_drops_a_half_written_row_and_continues(tmp_path) -> None:
    log = logger(tmp_path)
    for step in range(12):
        log.log_metrics({"train/loss": 1.0}, step=step)
    path = tmp_path / "logs" / "metrics.csv"
    with open(path, "a") as f:
        f.write("1")  # killed while writing step 12's row: "1" would read as step 1
    resumed = logger(tmp_path)
    resumed.rewind(12)
    resumed.log_metrics({"train/loss": 0.5}, step=12)
    logged = rows(path)
    assert [int(r["step"]) for r in logged] == list(range(13))
    assert logged[-1]["train/loss"] == "0.5"


def test_a_file_without_a_whole_header_starts_over(tmp_path) -> None:
    path = tmp_path / "logs" / "metrics.csv"
    path.parent.mkdir()
    path.write_text("step,train/lo")
    log = logger(tmp_path)
    log.log_metrics({"train/loss": 1.0}, step=0)
    (row,) = rows(path)
    assert float(row.pop("wall_time")) > 0  # each row's clock time (see the last test)
    assert row == {"step": "0", "train/loss": "1.0"}


def test_each_row_has_its_wall_clock_time(tmp_path) -> None:
    log = logger(tmp_path)
    before = time.time()
    log.log_metrics({"train/loss": 1.0}, step=0)
    log.log_early({"train/loss": 0.5}, step=1)
    log.log_metrics({"train/loss": 0.5}, step=1)  # Lightning's own call for the early row: no row
    log.log_metrics({"val/loss": 0.7}, step=1)
    after = time.time()
    logged = rows(tmp_path / "logs" / "metrics.csv")
    assert [r["step"] for r in logged] == ["0", "1", "1"]
    times = [float(r["wall_time"]) for r in logged]
    assert before - 0.01 <= times[0] <= times[1] <= times[2] <= after + 0.01
