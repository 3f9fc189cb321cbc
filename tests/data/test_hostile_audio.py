"""Audio built to exhaust a decoder: refused from its header, before anything is decoded.

Issue 34's attacks, each small on disk: 30 minutes of FLAC silence (335 kB, 3.2 GB decoded and
resampled), a WAV whose header says 1 Hz (upsampled 16,000x), a FLAC header claiming 2^36
frames (a numpy MemoryError), and a FIFO in place of a file (a read that never returns).
"""

from __future__ import annotations

import os
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechllm.data.audio import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    decode_audio,
    load_audio,
    prepare_waveform,
)
from speechllm.data.errors import AudioError

DECODED_SILENCE_BYTES = 30 * 60 * 48_000 * 2 * 4  # what decoding it all would allocate


@pytest.fixture(scope="module")
def silence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 minutes of 48 kHz stereo silence as FLAC: about 335 kB on disk."""
    path = tmp_path_factory.mktemp("hostile") / "silence.flac"
    with sf.SoundFile(path, "w", 48_000, 2, format="FLAC") as f:
        block = np.zeros((48_000 * 60, 2), np.int16)
        for _ in range(30):
            f.write(block)
    assert path.stat().st_size < 1_000_000
    return path


def peak_bytes(call: Callable[[], object]) -> int:
    """The most memory numpy and Python held at once during ``call`` (it may raise)."""
    tracemalloc.start()
    try:
        call()
    except AudioError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def refused(call: Callable[[], object], reason: str) -> AudioError:
    with pytest.raises(AudioError) as caught:
        call()
    assert caught.value.reason == reason, caught.value
    return caught.value


def test_thirty_minutes_of_silence_is_refused_from_the_header(silence: Path) -> None:
    data = silence.read_bytes()
    start = time.perf_counter()
    error = refused(lambda: decode_audio(data, 16_000, name="upload 1", max_seconds=30), "too_long")
    assert "upload 1" in str(error) and "1800" in str(error)
    refused(lambda: load_audio(str(silence), 16_000), "too_long")  # the default cap, 10 min
    assert time.perf_counter() - start < 5.0  # decoding it all took 15 s
    peak = peak_bytes(lambda: decode_audio(data, 16_000, max_seconds=30))
    assert peak < DECODED_SILENCE_BYTES / 100, peak


def test_a_segment_of_a_long_file_reads_only_the_segment(silence: Path) -> None:
    """A manifest line may point into a long recording: its duration bounds the read."""
    peak = peak_bytes(lambda: load_audio(str(silence), 16_000, offset=600.0, duration=2.0))
    waveform = load_audio(str(silence), 16_000, offset=600.0, duration=2.0)
    assert waveform.shape == (32_000,) and peak < 10_000_000
    refused(lambda: load_audio(str(silence), None, duration=1e308), "too_long")
    refused(lambda: load_audio(str(silence), None, offset=1e308, duration=1.0), "empty_audio")


def test_a_read_stops_at_the_cap_when_the_header_understates(tmp_path: Path) -> None:
    """The cap holds on the samples read, not only on the header's word."""
    sf.write(tmp_path / "a.wav", np.zeros(16_000 * 3, np.float32), 16_000)
    refused(lambda: load_audio(str(tmp_path / "a.wav"), None, max_seconds=2.0), "too_long")
    assert load_audio(str(tmp_path / "a.wav"), None, max_seconds=3.0).shape == (48_000,)


def _wav_header_rate(path: Path, rate: int) -> None:
    """Rewrite a WAV's sample rate (and byte rate) in its header, leaving the samples."""
    data = bytearray(path.read_bytes())
    channels, bits = struct.unpack_from("<H", data, 22)[0], struct.unpack_from("<H", data, 34)[0]
    struct.pack_into("<II", data, 24, rate, rate * channels * bits // 8)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rate", [1, MIN_SAMPLE_RATE - 1, MAX_SAMPLE_RATE + 1, 2**31 - 1])
def test_a_header_rate_outside_the_sane_range_is_refused(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "odd.wav"
    sf.write(path, np.zeros(2_000, np.int16), 16_000)
    _wav_header_rate(path, rate)
    assert sf.info(str(path)).samplerate == rate
    start = time.perf_counter()
    error = refused(lambda: load_audio(str(path), 16_000), "bad_sample_rate")
    assert str(path) in str(error) and str(rate) in str(error)
    refused(lambda: decode_audio(path.read_bytes(), 16_000, name="upload"), "bad_sample_rate")
    assert time.perf_counter() - start < 5.0  # 1 Hz upsampled to 16 kHz took 35 s


def test_too_many_channels_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.wav"
    sf.write(path, np.zeros((100, MAX_CHANNELS + 1), np.int16), 16_000)
    refused(lambda: load_audio(str(path), 16_000), "bad_channels")


def _flac_claiming(path: Path, frames: int) -> None:
    """Patch a FLAC's STREAMINFO total-samples field (36 bits after rate, channels, bits)."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO is the first block
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | frames
    data[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def test_a_flac_header_claiming_2_to_the_36_frames_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.flac"
    sf.write(path, np.zeros(4_800, np.int16), 48_000)
    _flac_claiming(path, 2**36 - 1)
    assert sf.info(str(path)).frames == 2**36 - 1
    refused(lambda: load_audio(str(path), 16_000), "too_long")
    refused(lambda: decode_audio(path.read_bytes(), 16_000, max_seconds=30), "too_long")
    # with no cap the read is block by block: the decoder's own error, not numpy's MemoryError
    peak = peak_bytes(lambda: load_audio(str(path), None, max_seconds=None))
    assert peak < 10_000_000


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "a.wav"
    os.mkfifo(fifo)
    result: list[BaseException | None] = []

    def read() -> None:
        try:
            load_audio(str(fifo), 16_000)
        except BaseException as error:  # reported to the test's thread
            result.append(error)
        else:
            result.append(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=20)
    if thread.is_alive():  # release the reader blocked in open() before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert isinstance(result[0], AudioError) and result[0].reason == "not_a_file"
    assert str(fifo) in str(result[0])


def test_a_caller_waveform_goes_through_the_same_guards() -> None:
    """Inference and the server hand in raw waveforms: the same rate, length and NaN checks,
    and the guarded resampler (4001 Hz would build a 64M-element sinc kernel)."""
    one_second = torch.zeros(4001)
    out = prepare_waveform(one_second, 4001, 16_000, "waveform")
    assert out.shape == (16_000,)
    with pytest.raises(AudioError) as caught:
        prepare_waveform(torch.zeros(10), 1, 16_000, "waveform")
    assert caught.value.reason == "bad_sample_rate"
    with pytest.raises(AudioError) as caught:
        prepare_waveform(torch.zeros(16_000 * 31), 16_000, 16_000, "waveform", max_seconds=30)
    assert caught.value.reason == "too_long"
    nan = torch.zeros(100)
    nan[3] = float("nan")
    with pytest.raises(AudioError) as caught:
        prepare_waveform(nan, 16_000, 16_000, "waveform")
    assert caught.value.reason == "nan_audio"
