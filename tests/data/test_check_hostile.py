"""``speechllm-data check`` on a hostile manifest: every line reported at file:line, no crash,
no hang, and the duration bounds training applies."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from speechllm.cli.data import main


def run_check(args: list[str], timeout: float = 60) -> int:
    """``main(args)`` in a thread, failing (not hanging) if it does not return in time."""
    result: list[int | BaseException] = []

    def target() -> None:
        try:
            result.append(main(args))
        except BaseException as error:  # reported to the test's thread
            result.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        for path in Path(args[-1]).parent.iterdir():  # release a reader blocked on a FIFO
            if path.is_fifo():
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"check did not return in {timeout} s")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_absurd_numbers_and_deep_nesting_are_bad_lines(
    tmp_path, write_audio, write_lines, line, capsys
) -> None:
    write_audio(tmp_path / "a.wav", seconds=1.0)
    manifest = write_lines(
        tmp_path / "m.jsonl",
        [
            line("ok", "a.wav"),
            line("huge", "a.wav", duration=1e308),  # OverflowError before
            '{"id": "nan", "audio": "a.wav", "task": "asr", "target": "x", "duration": NaN}',
            '{"id": "inf", "audio": "a.wav", "task": "asr", "target": "x", "duration": 1e400}',
            line("neg", "a.wav", duration=-1.0),
            '{"id": "big", "audio": "a.wav", "task": "asr", "target": "x", "duration": 1'
            + "0" * 400
            + "}",
            '{"id": "digits", "audio": "a.wav", "task": "asr", "target": "x", "offset": 1'
            + "0" * 5000
            + "}",
            "[" * 200_000,  # RecursionError before
            line("off", "a.wav", offset=1e308, duration=1.0),
            line("ok2", "a.wav", offset=0.5, duration=0.5),
        ],
    )
    assert run_check(["check", str(manifest)]) == 1
    out = capsys.readouterr().out
    expected = {
        2: "too_long",
        3: "bad_field",
        4: "bad_field",
        5: "bad_field",
        6: "bad_field",
        7: "malformed_json",
        8: "malformed_json",
        9: "empty_audio",
    }
    for number, reason in expected.items():
        errors = [x for x in out.splitlines() if x.startswith(f"ERROR {manifest}:{number}: ")]
        assert len(errors) == 1 and errors[0].endswith(f"[{reason}]"), (number, out)
    assert "2 valid item(s)" in out and f"{len(expected)} problem(s)" in out


def test_audio_that_is_a_fifo_or_a_device_is_refused_not_waited_on(
    tmp_path, write_audio, write_lines, line, capsys
) -> None:
    write_audio(tmp_path / "a.wav", seconds=1.0)
    os.mkfifo(tmp_path / "fifo.wav")
    manifest = write_lines(
        tmp_path / "m.jsonl",
        [
            line("fifo", "fifo.wav", duration=1.0),  # hung forever before
            line("fifo-measured", "fifo.wav"),  # no duration: the header is read to measure it
            line("zero", "/dev/zero", duration=1.0),
            line("ok", "a.wav"),
        ],
    )
    assert run_check(["check", str(manifest)]) == 1
    out = capsys.readouterr().out
    for number in (1, 2, 3):
        assert f"ERROR {manifest}:{number}: not a regular file" in out, out
    assert "1 valid item(s)" in out and "3 problem(s)" in out


def test_durations_are_bounded_as_training_bounds_them(
    tmp_path, write_audio, write_lines, line, capsys
) -> None:
    write_audio(tmp_path / "a.wav", seconds=3.0)
    write_audio(tmp_path / "tiny.wav", seconds=0.0005)  # 8 samples: under one encoder frame
    manifest = write_lines(
        tmp_path / "m.jsonl",
        [
            line("tiny", "tiny.wav"),
            line("long", "a.wav"),
            line("short-seg", "a.wav", duration=0.01),
        ],
    )
    assert run_check(["check", str(manifest)]) == 1  # passed before: training refused it
    out = capsys.readouterr().out
    assert f"ERROR {manifest}:1: 0.0005 s is shorter than min_item_seconds=0.025" in out
    assert f"ERROR {manifest}:3: 0.01 s is shorter than min_item_seconds" in out
    assert "2 problem(s): {'too_short': 2}" in out
    assert run_check(["check", "--max-item-seconds", "2", str(manifest)]) == 1
    assert f"ERROR {manifest}:2: 3 s is longer than max_item_seconds=2.0" in capsys.readouterr().out
    assert run_check(["check", "--max-item-seconds", "2", "--too-long", "cut", str(manifest)]) == 1
    assert "3 problem(s)" not in capsys.readouterr().out
    ok = write_lines(tmp_path / "ok.jsonl", [line("long", "a.wav")])
    assert (
        run_check(["check", "--min-item-seconds", "0", "--max-item-seconds", "none", str(ok)]) == 0
    )


def test_a_missing_manifest_is_a_problem_not_a_crash(tmp_path, write_audio, write_lines, line):
    write_audio(tmp_path / "a.wav")
    good = write_lines(tmp_path / "good.jsonl", [line("a", "a.wav")])
    assert run_check(["check", str(tmp_path / "nope.jsonl"), str(good)]) == 1


def test_text_manifests_are_checked_as_training_reads_them(
    tmp_path, write_audio, write_lines, line, capsys
) -> None:
    write_audio(tmp_path / "a.wav")
    speech = write_lines(tmp_path / "speech.jsonl", [line("a", "a.wav")])
    text = tmp_path / "text.jsonl"
    text.write_text(
        '{"id": "q1", "instruction": "Name a colour.", "target": "Red."}\n'
        '{"id": "a", "instruction": "Repeats a speech id.", "target": "x"}\n'
        '{"id": "q3", "instruction": "No answer."}\n'
        "[[[[\n"
    )
    plain = tmp_path / "notes.txt"
    plain.write_text("A continuation.\n")
    wrong = tmp_path / "pairs.csv"
    wrong.write_text("a,b\n")
    args = ["check", str(speech), "--text", str(text), str(plain), str(wrong)]
    args.append(str(tmp_path / "missing.jsonl"))
    assert run_check(args) == 1
    out = capsys.readouterr().out
    for number in (2, 3, 4):
        assert f"ERROR {text}:{number}:" in out
    assert f"ERROR {wrong}:0:" in out and f"ERROR {tmp_path / 'missing.jsonl'}:0:" in out
    assert "5 problem(s)" in out
    assert "text " in out and "3 valid item(s)" in out  # a, q1 and the continuation
