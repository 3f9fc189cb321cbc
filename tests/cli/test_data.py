from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from speechllm.cli.data import main


def test_check_reports_every_problem_and_a_summary(
    tmp_path, write_audio, write_lines, line, capsys
):
    write_audio(tmp_path / "a.wav", seconds=1.5)
    (tmp_path / "junk.wav").write_bytes(b"junk")
    manifest = write_lines(
        tmp_path / "m.jsonl",
        [
            line("a", "a.wav"),
            line("b", "a.wav", task="ic", target="alarm_set"),
            "{not json",
            line("c", "junk.wav", duration=1.0),
            line("d", "a.wav", target=""),
        ],
    )
    assert main(["check", str(manifest)]) == 1
    out = capsys.readouterr().out
    for number, reason in ((3, "malformed_json"), (4, "unreadable"), (5, "empty_target")):
        assert f"ERROR {manifest}:{number}: " in out and f"[{reason}]" in out
    assert "2 valid item(s)" in out and "labels of ic: alarm_set=1" in out
    assert re.search(r"^1-2 +2$", out, re.MULTILINE)  # both valid items are 1.5 s long
    assert "3 problem(s)" in out
    assert main(["check", "--no-audio", str(manifest)]) == 1
    assert "[unreadable]" not in capsys.readouterr().out


def test_module_entry_point_exit_codes(tmp_path: Path, write_audio, write_lines, line) -> None:
    write_audio(tmp_path / "a.wav")
    good = write_lines(tmp_path / "good.jsonl", [line("a", "a.wav")])
    run = subprocess.run(
        [sys.executable, "-m", "speechllm.cli.data", "check", str(good)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "0 problem(s)" in run.stdout and "asr" in run.stdout
