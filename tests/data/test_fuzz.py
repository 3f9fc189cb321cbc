"""Hostile inputs found by search, not by listing: manifests and audio files from hypothesis.

The property: every input is used, or rejected with a ``DataError`` naming its file and line;
nothing else escapes (no crash mid-run), and nothing reads more audio than its entry allows.
The default profile is small and derandomized (tests/conftest.py); HYPOTHESIS_PROFILE=long
searches longer.
"""

from __future__ import annotations

import json
import os
import struct
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given
from hypothesis import strategies as st

from speechllm.data.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, load_audio
from speechllm.data.datamodule import SpeechDataModule
from speechllm.data.dataset import collate
from speechllm.data.errors import AudioError, DataError
from speechllm.data.features import Featurizer
from speechllm.data.manifest import OPTIONAL, REQUIRED, read_manifest
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.tasks import TASKS

RATE = 16000

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
audio_refs = st.sampled_from(
    [
        "ok.wav",
        "../outside/ok.wav",
        "sub/../ok.wav",
        "link.wav",
        "loop.wav",
        "missing.wav",
        "sub",
        "",
        "nul\x00.wav",
        "/",
        "/dev/null",
    ]
)
field_values = {
    "id": st.text(max_size=8) | json_values,
    "audio": audio_refs | json_values,
    "task": st.sampled_from(sorted(TASKS)) | json_values,
    "target": st.text(max_size=20) | json_values,
    "duration": st.floats(min_value=-1, max_value=1e6) | json_values,
    "offset": st.floats(min_value=-1, max_value=1e309) | json_values,
}
records = st.fixed_dictionaries(
    {k: field_values.get(k, json_values) for k in ("id", "audio", "task", "target")},
    optional={k: field_values.get(k, json_values) for k in (*OPTIONAL, "junk")},
)
lines = (
    records.map(lambda r: json.dumps(r).encode("utf-8", "surrogatepass"))
    | st.dictionaries(st.sampled_from(REQUIRED), json_values).map(lambda r: json.dumps(r).encode())
    | st.binary(max_size=40).filter(lambda b: b"\n" not in b)
)


def corpus(root: Path) -> Path:
    """A folder with one good recording, a symlink to it, a symlink loop and a subfolder."""
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root.parent / "outside").mkdir(exist_ok=True)
    for path in (root / "ok.wav", root.parent / "outside" / "ok.wav"):
        if not path.exists():
            sf.write(path, np.zeros(RATE // 2, np.float32), RATE)
    for name, target in (("link.wav", "ok.wav"), ("loop.wav", "loop.wav")):
        if not (root / name).is_symlink():
            os.symlink(target, root / name)
    return root


@given(st.lists(lines, min_size=1, max_size=6))
def test_manifest_lines_load_or_fail_naming_file_and_line(tmp_path_factory, raw: list[bytes]):
    root = corpus(tmp_path_factory.getbasetemp() / "fuzz_manifest" / "corpus")
    manifest = root / "m.jsonl"
    manifest.write_bytes(b"\n".join(raw) + b"\n")
    errors: list[DataError] = []
    entries = read_manifest(manifest, on_error=errors.append)
    for error in errors:
        assert error.source == str(manifest) and 1 <= error.line <= len(raw), error
    for entry in entries:
        assert entry.duration > 0 and entry.offset >= 0
        try:
            audio = load_audio(entry.audio, RATE, entry.offset, entry.duration)
        except AudioError:
            continue
        assert audio.ndim == 1 and torch.isfinite(audio).all()
        assert len(audio) <= entry.duration * RATE + 1  # never more than the entry allows


def wav_bytes(channels: int, rate: int, bits: int, frames: int, body: int) -> bytes:
    """A PCM WAV header declaring ``frames`` frames, followed by ``body`` bytes of noise."""
    block = channels * bits // 8
    data = frames * block
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
    header += b"data" + struct.pack("<I", data)
    return header + np.random.default_rng(body).bytes(body)


@given(
    channels=st.integers(0, 8),
    rate=st.integers(1, 384_000),
    bits=st.sampled_from([8, 16, 24, 32]),
    frames=st.integers(0, 4000),
    body_fraction=st.floats(0, 1.2),
    noise=st.binary(max_size=64),
)
def test_audio_files_decode_or_fail_with_an_audio_error(
    tmp_path_factory, channels, rate, bits, frames, body_fraction, noise
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz_audio.wav"
    block = channels * bits // 8
    path.write_bytes(
        noise + wav_bytes(channels, rate, bits, frames, int(frames * block * body_fraction))
        if noise[:1] == b"x"  # now and then garbage before the header
        else wav_bytes(channels, rate, bits, frames, int(frames * block * body_fraction))
    )
    try:
        audio = load_audio(str(path), RATE)
    except AudioError:
        return
    assert audio.ndim == 1 and torch.isfinite(audio).all() and len(audio) > 0


@pytest.fixture(scope="module")
def tiny_model() -> SpeechLLM:
    torch.manual_seed(0)
    return SpeechLLM(tiny_encoder("wavlm"), partial(ConvDownsampler), tiny_llm("llama"))


@given(st.integers(1, 1000), st.sampled_from([1, 7, 8000, 16000, 44100, 384_000]))
def test_clips_too_short_for_an_encoder_frame_are_refused_before_training(
    tmp_path_factory, tiny_model, frames, rate
) -> None:
    root = tmp_path_factory.getbasetemp() / "fuzz_short"
    root.mkdir(exist_ok=True)
    sf.write(root / "a.wav", np.full(frames, 0.1, np.float32), rate, subtype="FLOAT")
    line = {"id": "a", "audio": "a.wav", "task": "asr", "target": "x"}
    (root / "m.jsonl").write_text(json.dumps(line) + "\n")
    featurizer = Featurizer(tiny_model.encoder.feature_extractor)
    dm = SpeechDataModule(
        featurizer, [str(root / "m.jsonl")], skip_bad=True, max_item_seconds=2.0, num_workers=0
    )
    dm.setup("fit")
    if dm.bad_item_report():  # 1 Hz x 1000 frames is 1000 s: too long, not too short
        ((reason, (error,)),) = dm.bad_item_report().items()
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:  # refused from the header first
            assert reason == "bad_sample_rate"
        else:
            assert reason == ("too_short" if frames / rate < 0.025 else "too_long")
        assert error.startswith(f"{root / 'm.jsonl'}:1: ")
        return
    batch = collate([dm.datasets["train"][0]])
    del batch["bad_items"]
    with torch.no_grad():
        assert torch.isfinite(tiny_model(**batch).loss)


def test_an_hour_long_clip_is_refused_or_cut_without_reading_it(tmp_path, wav2vec2) -> None:
    """One hour of 16 kHz int16 (a sparse file: 115 MB declared, nothing written)."""
    hour = tmp_path / "hour.wav"
    hour.write_bytes(wav_bytes(1, RATE, 16, 3600 * RATE, 0))
    with open(hour, "r+b") as f:
        f.truncate(44 + 3600 * RATE * 2)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "h", "audio": "hour.wav", "task": "ic", "target": "x"}))
    refused = SpeechDataModule(
        wav2vec2, [str(manifest)], skip_bad=True, max_item_seconds=30.0, num_workers=0
    )
    refused.setup("fit")
    (error,) = refused.bad_item_report()["too_long"]
    assert error.startswith(f"{manifest}:1: 3600 s is longer than max_item_seconds=30")
    cut = SpeechDataModule(
        wav2vec2, [str(manifest)], max_item_seconds=30.0, too_long="cut", num_workers=0
    )
    cut.setup("fit")
    item = cut.datasets["train"][0]
    assert item["length"] == 30 * RATE  # 1.9 MB read, not 230 MB
