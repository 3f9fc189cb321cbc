"""Text-only items (``data.text_manifests``): reading, errors, batches, mixture, resume."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from speechllm.data import dataset as dataset_module
from speechllm.data import text_items
from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.dataset import SpeechDataset, collate
from speechllm.data.errors import DataError
from speechllm.data.features import Featurizer
from speechllm.data.manifest import read_manifest
from speechllm.data.sampler import ItemKey
from speechllm.data.text_items import MIN_TEXT_SECONDS, read_text_items, text_seconds
from speechllm.tasks import TEXT_TASK, get_task

PAIRS = [
    {"id": "q1", "instruction": "Name a prime number.", "target": "Seven."},
    {"instruction": "What is the capital of France?", "target": "Paris is the capital of France."},
]


@pytest.fixture
def speech(tmp_path: Path, write_audio, write_lines, line) -> Path:
    for i, seconds in enumerate([0.4, 0.6, 0.8, 1.0]):
        write_audio(tmp_path / f"wavs/{i}.wav", seconds=seconds)
    lines = [line(f"u{i}", f"wavs/{i}.wav", target=f"text {i}") for i in range(4)]
    return write_lines(tmp_path / "train.jsonl", lines)


@pytest.fixture
def texts(tmp_path: Path, write_lines) -> list[str]:
    pairs = write_lines(tmp_path / "pairs.jsonl", PAIRS)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\n\n  a second line  \nthird\n", encoding="utf-8")
    return [str(pairs), str(corpus)]


def _dm(featurizer: Featurizer, speech: Path, texts: list[str], **kwargs) -> SpeechDataModule:
    return SpeechDataModule(
        featurizer,
        train_manifests=[str(speech)],
        text_manifests=texts,
        num_workers=0,
        max_batch_seconds=4.0,
        **kwargs,
    )


def test_reads_pairs_and_continuations(texts: list[str]) -> None:
    items = read_text_items(texts)
    assert [e.id for e in items] == ["q1", "pairs-2", "corpus-1", "corpus-3", "corpus-4"]
    assert {(e.task, e.audio) for e in items} == {("text", "")}
    assert items[1].instruction == PAIRS[1]["instruction"]
    assert [(e.instruction, e.target) for e in items[2:]] == [
        ("", "the cat sat on the mat"),
        ("", "a second line"),
        ("", "third"),
    ]
    assert [(e.source, e.line) for e in items[2:]] == [(texts[1], 1), (texts[1], 3), (texts[1], 4)]
    chars = len(PAIRS[1]["instruction"]) + len(PAIRS[1]["target"])
    assert items[1].duration == pytest.approx(chars / 15) == text_seconds(**PAIRS[1])
    assert items[4].duration == MIN_TEXT_SECONDS  # "third": the floor


LONG = "x" * 101
BAD_LINES = {
    "malformed_json": '{"instruction": "a", ',
    "missing_field": {"instruction": "a"},
    "bad_field": {"instruction": "a", "target": "b", "audio": "x.wav"},
    "empty_target": {"instruction": "a", "target": "  "},
    "too_long": {"instruction": "a", "target": LONG},
}


@pytest.mark.parametrize("reason", sorted(BAD_LINES))
def test_bad_pairs_name_file_and_line(tmp_path: Path, write_lines, reason: str) -> None:
    path = write_lines(tmp_path / "p.jsonl", [PAIRS[0], BAD_LINES[reason]])
    with pytest.raises(DataError, match=rf"^{path}:2: .*\[{reason}\]$"):
        read_text_items([path], max_chars=100)
    errors: list[DataError] = []
    assert [e.id for e in read_text_items([path], errors.append, max_chars=100)] == ["q1"]
    assert [(e.line, e.reason) for e in errors] == [(2, reason)]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"instruction": "", "target": "b"}, "empty instruction"),
        ({"instruction": "a", "target": 3}, "field 'target' must be a string"),
        ({"id": "", "instruction": "a", "target": "b"}, "empty id"),
    ],
)
def test_pair_fields_are_checked(tmp_path: Path, write_lines, record, message: str) -> None:
    path = write_lines(tmp_path / "p.jsonl", [record])
    with pytest.raises(DataError, match=rf"^{path}:1: {message}"):
        read_text_items([path])


def test_an_overlong_line_is_refused_without_being_held(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    huge = b"y" * (2**20 + 12 * 10 + 4096)  # past the line-byte bound of max_chars=10
    path.write_bytes(b"short\n" + huge + b"\nafter\nbad \xff byte\n")
    errors: list[DataError] = []
    items = read_text_items([path], errors.append, max_chars=10)
    assert [(e.id, e.target) for e in items] == [("c-1", "short"), ("c-3", "after")]
    assert [(e.line, e.reason) for e in errors] == [(2, "too_long"), (4, "malformed_text")]
    assert "line longer than" in errors[0].message and "not UTF-8" in errors[1].message


def test_files_are_checked_before_reading(tmp_path: Path, monkeypatch, speech, wav2vec2) -> None:
    with pytest.raises(ValueError, match=r"x\.csv: a text manifest is \.jsonl"):
        _dm(wav2vec2, speech, [str(tmp_path / "x.csv")])
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="pipe.txt: a text manifest must be a regular file"):
        read_text_items([fifo])
    big = tmp_path / "big.txt"
    big.write_text("a line\n" * 10)
    monkeypatch.setattr(text_items, "MAX_TEXT_FILE_BYTES", 50)
    with pytest.raises(ValueError, match=r"big\.txt: 70 bytes, more than the 50"):
        read_text_items([big])


def test_ids_must_not_repeat_speech_or_text_ids(
    tmp_path: Path, speech: Path, write_lines, wav2vec2
) -> None:
    clash = write_lines(tmp_path / "clash.jsonl", [{**PAIRS[0], "id": "u2"}, {**PAIRS[0]}])
    with pytest.raises(DataError, match=rf"^{clash}:1: duplicate id 'u2' \(first at {speech}:3\)"):
        _dm(wav2vec2, speech, [str(clash)]).setup("fit")
    corpus = tmp_path / "notes.txt"
    corpus.write_text("one\n")
    named = write_lines(tmp_path / "named.jsonl", [{**PAIRS[0], "id": "notes-1"}])
    with pytest.raises(
        DataError, match=rf"{named}:1: duplicate id 'notes-1' \(first at {corpus}:1"
    ):
        read_text_items([corpus, named])


def test_skip_bad_counts_bad_text_lines(
    tmp_path: Path, speech: Path, texts: list[str], write_lines, wav2vec2
) -> None:
    bad = write_lines(tmp_path / "bad.jsonl", [PAIRS[0] | {"id": "u0"}, '{"oops"', PAIRS[1]])
    dm = _dm(wav2vec2, speech, [*texts, str(bad)], skip_bad=True)
    dm.setup("fit")
    ids = [e.id for e in dm.datasets["train"].entries]
    assert ids[:4] == ["u0", "u1", "u2", "u3"]
    assert ids[4:] == ["q1", "pairs-2", "corpus-1", "corpus-3", "corpus-4", "bad-3"]
    report = dm.bad_item_report()
    assert report["duplicate_id"] == [
        f"{bad}:1: duplicate id 'u0' (first at {speech}:1) [duplicate_id]"
    ]
    assert report["malformed_json"][0].startswith(f"{bad}:2: ")


def test_a_manifest_line_cannot_claim_the_text_task(tmp_path: Path, write_lines, line) -> None:
    path = write_lines(tmp_path / "m.jsonl", [line("u", "a.wav", task="text", duration=1.0)])
    with pytest.raises(DataError, match=r"m\.jsonl:1: task 'text' is for text-only items"):
        read_manifest(path)


@pytest.mark.parametrize("kind", ["wav2vec2", "whisper", "whisper_real"])
def test_text_rows_collate_as_zero_length_padding(
    kind: str, speech: Path, texts: list[str], request, monkeypatch
) -> None:
    featurizer = request.getfixturevalue("whisper" if kind.startswith("whisper") else kind)
    if kind == "whisper_real":
        featurizer = Featurizer(featurizer.extractor, whole_windows=False)
    calls, original = Counter(), dataset_module.make_item

    def make_item(*args, **kwargs):
        calls["featurized"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "make_item", make_item)
    dm = _dm(featurizer, speech, texts)
    dm.setup("fit")
    dataset: SpeechDataset = dm.datasets["train"]
    mixed = collate([dataset[ItemKey(0, 0)], dataset[ItemKey(4, 0)], dataset[ItemKey(6, 0)]])
    assert calls["featurized"] == 1  # only the speech item
    lengths = mixed["audio_lengths"].tolist()
    assert lengths[1:] == [0, 0] and lengths[0] > 0
    assert mixed["audio"][1:].abs().sum() == 0 and mixed["audio"][0].abs().sum() > 0
    assert mixed["tasks"] == ["asr", "text", "text"]
    assert mixed["audio_keys"][1:] == ["", ""] and mixed["audio_keys"][0]
    assert mixed["instructions"][1:] == [PAIRS[0]["instruction"], ""]
    assert mixed["targets"][1:] == ["Seven.", "the cat sat on the mat"]
    only_text = collate([dataset[ItemKey(i, 0)] for i in (4, 5, 6)])
    lead = mixed["audio"].shape[1:-1]  # (n_mels,) for log-mel, () for waveforms
    assert only_text["audio"].shape == (3, *lead, 0) and only_text["audio"].dtype == torch.float32
    assert only_text["audio_lengths"].tolist() == [0, 0, 0]
    assert only_text["ids"] == ["q1", "pairs-2", "corpus-1"] and calls["featurized"] == 1


def _text_share(dm: SpeechDataModule, n: int) -> float:
    sampler = dm.train_dataloader().batch_sampler
    tasks = [dm.datasets["train"].entries[sampler.batch(k)[0].index].task for k in range(n)]
    return tasks.count("text") / n


def test_mixture_weights_draw_text_items_at_their_rate(
    speech: Path, texts: list[str], wav2vec2
) -> None:
    dm = _dm(wav2vec2, speech, texts, mixture_schedule=[(0, {"asr": 3.0, "text": 1.0})])
    assert _text_share(dm, 2000) == pytest.approx(0.25, abs=0.03)
    dm.set_mixture_schedule([(0, {"asr": 1.0}), (10, {"asr": 1.0, "text": 1.0})])  # curriculum
    sampler = dm._train_sampler
    tasks = [dm.datasets["train"].entries[sampler.batch(k)[0].index].task for k in range(400)]
    assert set(tasks[:10]) == {"asr"} and tasks[10:].count("text") / 390 == pytest.approx(
        0.5, abs=0.07
    )
    natural = _dm(wav2vec2, speech, texts)  # no schedule: weighed by (estimated) hours
    entries = read_text_items(texts)
    text_hours = sum(e.duration for e in entries)
    share = text_hours / (text_hours + 0.4 + 0.6 + 0.8 + 1.0)
    assert _text_share(natural, 2000) == pytest.approx(share, abs=0.03)


def test_validation_never_holds_text_items(
    tmp_path: Path, speech: Path, texts: list[str], wav2vec2
) -> None:
    dm = _dm(wav2vec2, speech, texts)
    dm.manifests["val"] = [str(speech)]
    dm.setup("fit")
    assert {e.task for e in dm.datasets["val"].entries} == {"asr"}
    assert {b for batch in dm.val_dataloader() for b in batch["tasks"]} == {"asr"}
    text_only = SpeechDataModule(wav2vec2, text_manifests=texts, num_workers=0)
    text_only.setup("fit")
    assert set(text_only.datasets) == {"train"} and text_only.val_dataloader() == []


def test_a_stream_with_text_items_resumes_exactly(speech: Path, texts: list[str], wav2vec2) -> None:
    def run(step: int, n: int) -> list[tuple]:
        dm = _dm(wav2vec2, speech, texts, seed=5, max_batch_items=3)
        dm.trainer = SimpleNamespace(
            global_step=step, accumulate_grad_batches=2, global_rank=0, world_size=1
        )
        dm.set_mixture_schedule([(0, {"asr": 1.0}), (2, {"asr": 1.0, "text": 1.0})])
        loader = iter(dm.train_dataloader())
        out = []
        for _ in range(n):
            batch = dm.on_before_batch_transfer(next(loader), 0)
            out.append(
                (
                    tuple(batch["ids"]),
                    tuple(batch["instructions"]),
                    tuple(batch["targets"]),
                    tuple(batch["audio_lengths"].tolist()),
                    batch["audio"].shape,
                )
            )
        return out

    uninterrupted = run(0, 24)
    assert run(5, 14) == uninterrupted[10:]
    tasks = Counter(0 in lengths for _, _, _, lengths, _ in uninterrupted[10:])
    assert tasks[True] > 2 and tasks[False] > 2  # text and speech batches both resumed
    assert all(0 not in lengths for _, _, _, lengths, _ in uninterrupted[:4])  # stage 0: asr


def test_text_task_is_registered() -> None:
    task = get_task(TEXT_TASK)
    assert task.name == "text" and task.scoring == "text" and task.route(False, False) == "free"
