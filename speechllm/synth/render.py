"""Turn a planned :class:`~speechllm.synth.plan.Item` into a 16 kHz mono FLAC file.

Rendering depends on the item and the seed only (noise is seeded from the item id), and a
file is written under a temporary name then renamed, so an interrupted run leaves no
half-written audio and a re-run can trust every file it finds.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from speechllm.synth.espeak import Engine, engine
from speechllm.synth.nonspeech import add_noise, nonspeech
from speechllm.synth.plan import Item

SAMPLE_RATE = 16000
PEAK = 0.95


def _speak(item: Item) -> np.ndarray:
    """The item's turns, joined by its gap (a negative gap overlaps the second turn)."""
    waves = []
    for turn in item.turns:
        samples = engine().synth(turn.sentence.spoken, turn.voice.name, turn.prosody)
        wave = samples.astype(np.float32) / 32768.0
        waves.append(
            resample_poly(wave, SAMPLE_RATE // 50, Engine.SAMPLE_RATE // 50).astype(np.float32)
        )
    out = waves[0]
    for wave in waves[1:]:
        start = len(out) + int(item.gap_s * SAMPLE_RATE)
        start = max(start, 0)
        mixed = np.zeros(max(len(out), start + len(wave)), np.float32)
        mixed[: len(out)] += out
        mixed[start : start + len(wave)] += wave
        out = mixed
    return out


def render(item: Item, seed: int) -> np.ndarray:
    """The item's audio: float32 in [-PEAK, PEAK] at :data:`SAMPLE_RATE`."""
    rng = np.random.default_rng([seed, zlib.crc32(item.id.encode())])
    if item.nonspeech is not None:
        audio = nonspeech(item.nonspeech, item.length_s, SAMPLE_RATE, rng)
    else:
        audio = _speak(item)
        if item.snr_db is not None:
            audio = add_noise(audio, item.snr_db, rng)
    peak = float(np.max(np.abs(audio)))
    return audio * (PEAK / peak) if peak > PEAK else audio


def write_item(item: Item, root: str, seed: int) -> tuple[float, bool]:
    """Render ``item`` into ``root`` unless a finished file is already there.

    Returns:
        The audio's duration in seconds and whether the file was skipped.
    """
    path = Path(root) / item.audio
    if path.exists() and path.stat().st_size > 0:
        return sf.info(str(path)).duration, True
    audio = render(item, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sf.write(str(tmp), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)
    return len(audio) / SAMPLE_RATE, False
