from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.errors import DataError
from speechllm.data.instructions import load_templates

CONTRACT = {
    "audio",
    "audio_lengths",
    "instructions",
    "targets",
    "tasks",
    "ids",
    "audio_keys",
    "transcripts",
}


@pytest.fixture
def corpus(tmp_path: Path, write_audio, write_lines, line) -> Path:
    for i, seconds in enumerate([0.4, 0.6, 0.8, 1.0, 4.0]):  # the 4 s clip spans 2 windows
        write_audio(tmp_path / f"wavs/{i}.wav", seconds=seconds)
    lines = [line(f"u{i}", f"wavs/{i}.wav", target=f"text {i}") for i in range(5)]
    lines.append(line("k0", "wavs/0.wav", task="kws", target="yes", meta={"keyword": "lamp"}))
    return write_lines(tmp_path / "train.jsonl", lines)


def _batches(dm: SpeechDataModule, loader) -> list[dict]:
    return [dm.on_before_batch_transfer(batch, 0) for batch in loader]  # as Lightning does


def test_eval_batches_follow_the_contract(corpus: Path, whisper) -> None:
    dm = SpeechDataModule(
        whisper,
        val_manifests=[str(corpus)],
        max_batch_seconds=3.0,
        num_workers=0,
        instruction_split="heldout",
    )
    batches = _batches(dm, dm.val_dataloader())
    assert all(set(b) == CONTRACT for b in batches)
    first = batches[0]
    assert first["ids"] == ["u4"] and first["audio"].shape == (1, 80, 600)
    assert first["audio_lengths"].tolist() == [400]
    assert sorted(i for b in batches for i in b["ids"]) == ["k0", "u0", "u1", "u2", "u3", "u4"]
    heldout = set(load_templates("asr")["heldout"])
    asr = [
        t
        for b in batches
        for t, task in zip(b["instructions"], b["tasks"], strict=True)
        if task == "asr"
    ]
    assert set(asr) <= heldout
    again = _batches(dm, dm.val_dataloader())
    assert [b["instructions"] for b in again] == [b["instructions"] for b in batches]


def test_train_stream_resumes_from_the_trainer_step(corpus: Path, wav2vec2) -> None:
    def run(step: int, n: int) -> list[tuple]:
        dm = SpeechDataModule(
            wav2vec2, train_manifests=[str(corpus)], max_batch_seconds=1.5, num_workers=0, seed=7
        )
        dm.trainer = SimpleNamespace(
            global_step=step, accumulate_grad_batches=2, global_rank=0, world_size=1
        )
        dm.set_mixture_schedule([(0, {"asr": 1, "kws": 1})])
        loader = iter(dm.train_dataloader())
        out = []
        for _ in range(n):
            batch = next(loader)
            assert batch["audio"].dim() == 2 and set(batch) >= CONTRACT
            out.append((tuple(batch["ids"]), tuple(batch["instructions"])))
        return out

    uninterrupted = run(0, 16)
    assert run(3, 10) == uninterrupted[6:]
    seen = set(load_templates("asr")["seen"])
    assert {i for ids, texts in uninterrupted for i in texts if "lamp" not in i} <= seen


def test_spec_augment_needs_log_mel(wav2vec2) -> None:
    with pytest.raises(ValueError, match="log-mel"):
        SpeechDataModule(wav2vec2, spec_augment=True)


def _nan(path: Path) -> None:
    data = np.zeros(16000, np.float32)
    data[7] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


BAD_CASES = {
    "missing_file": (lambda p: None, {"audio": "wavs/nope.wav"}),
    "unreadable": (lambda p: p.write_bytes(b"garbage"), {}),
    "truncated": (_truncate, {"duration": 1.0}),
    "empty_audio": (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), {}),
    "nan_audio": (_nan, {}),
    "empty_target": (lambda p: None, {"target": ""}),
    "unknown_task": (lambda p: None, {"task": "juggling"}),
    "malformed_json": (lambda p: None, None),
    "duplicate_id": (lambda p: None, {"id": "u0"}),
}


@pytest.mark.parametrize("reason", sorted(BAD_CASES))
def test_bad_items_raise_or_are_skipped_and_counted(
    reason: str, tmp_path: Path, corpus: Path, write_audio, write_lines, line, whisper
) -> None:
    damage, fields = BAD_CASES[reason]
    bad_audio = write_audio(tmp_path / "wavs/bad.wav", seconds=1.0)
    damage(bad_audio)
    bad = (
        '{"id": "bad", "audio": '
        if fields is None
        else {**line("bad", "wavs/bad.wav", duration=1.0), **fields}
    )
    manifest = write_lines(tmp_path / "val.jsonl", [*corpus.read_text().splitlines()[:3], bad])
    where = f"{manifest}:4:"

    strict = SpeechDataModule(whisper, val_manifests=[str(manifest)], num_workers=0)
    with pytest.raises(DataError) as caught:
        _batches(strict, strict.val_dataloader())
    assert caught.value.reason == reason and str(caught.value).startswith(where)

    lenient = SpeechDataModule(
        whisper, val_manifests=[str(manifest)], num_workers=0, skip_bad=True, max_batch_seconds=2.0
    )
    batches = _batches(lenient, lenient.val_dataloader())
    ids = sorted(i for b in batches for i in b["ids"])
    assert ids == ["u0", "u1", "u2"]
    report = lenient.bad_item_report()
    assert list(report) == [reason] and len(report[reason]) == 1
    assert report[reason][0].startswith(where)


def test_all_bad_batch_is_empty_not_a_crash(tmp_path: Path, write_lines, line, whisper) -> None:
    manifest = write_lines(
        tmp_path / "m.jsonl",
        [line("x", "gone.wav", duration=1.0), line("y", "gone2.wav", duration=1.0)],
    )
    dm = SpeechDataModule(whisper, train_manifests=[str(manifest)], skip_bad=True, num_workers=0)
    batch = dm.on_before_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["ids"] == [] and batch["audio"].numel() == 0
    assert batch["audio_lengths"].dtype == torch.long
    assert len(dm.bad_item_report()["missing_file"]) == 2


def test_workers_carry_bad_items_back(tmp_path: Path, corpus: Path, write_lines, line, wav2vec2):
    manifest = write_lines(
        tmp_path / "m.jsonl",
        [*corpus.read_text().splitlines()[:2], line("x", "gone.wav", duration=0.5)],
    )
    dm = SpeechDataModule(wav2vec2, val_manifests=[str(manifest)], skip_bad=True, num_workers=1)
    ids = [i for b in _batches(dm, dm.val_dataloader()) for i in b["ids"]]
    assert sorted(ids) == ["u0", "u1"]
    assert dm.bad_item_report()["missing_file"][0].startswith(f"{manifest}:3:")


def test_lightning_calls_the_hooks(tmp_path: Path, corpus: Path, write_lines, line, wav2vec2):
    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen: list[list[str]] = []

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            assert "bad_items" not in batch  # taken out by the data module's hook
            self.seen.append(batch["ids"])
            return (self.w * batch["audio"].mean()).sum() + self.w.square().sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    manifest = write_lines(
        tmp_path / "m.jsonl",
        [*corpus.read_text().splitlines()[:4], line("x", "gone.wav", duration=0.5)],
    )
    dm = SpeechDataModule(
        wav2vec2, train_manifests=[str(manifest)], skip_bad=True, num_workers=0, max_batch_items=5
    )
    probe = Probe()
    trainer = L.Trainer(
        max_steps=6,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(probe, datamodule=dm)
    assert len(probe.seen) == 6 and "x" not in {i for ids in probe.seen for i in ids}
    assert dm.bad_item_report()["missing_file"][0].startswith(f"{manifest}:5:")
