"""Non-speech audio for ``sns`` and background noise for speech, generated with numpy.

Every function takes its random generator from the caller, who seeds it from the utterance
id, so a file's bytes do not depend on which worker made it or in what order.
"""

from __future__ import annotations

import numpy as np

NONSPEECH_KINDS = ("noise", "tones", "chords", "silence")
_NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def colored_noise(n: int, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """Unit-RMS noise with power falling as 1/f**k (white k=0, pink 1, brown 2)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spectrum / freqs ** (_NOISE_COLOURS[colour] / 2), n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def _envelope(n: int, sample_rate: int, fade_s: float = 0.01) -> np.ndarray:
    """Short fades, so notes start and stop without clicks that sound like plosives."""
    fade = min(n // 2, int(fade_s * sample_rate))
    env = np.ones(n, np.float32)
    env[:fade] = np.linspace(0, 1, fade)
    env[n - fade :] = np.linspace(1, 0, fade)
    return env


def _notes(
    duration_s: float, sample_rate: int, rng: np.random.Generator, chord: bool
) -> np.ndarray:
    """A sequence of beeps (one frequency) or chords (a triad with harmonics) and rests."""
    out: list[np.ndarray] = []
    total = int(duration_s * sample_rate)
    while sum(map(len, out)) < total:
        n = int(rng.uniform(0.1, 0.6) * sample_rate)
        t = np.arange(n) / sample_rate
        root = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        if chord:
            steps = (0, 4, 7) if rng.random() < 0.5 else (0, 3, 7)
            freqs = [root * 2 ** (s / 12) * h for s in steps for h in (1, 2, 3)]
        else:
            freqs = [root * 4]
        note = sum(
            np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) / (i % 3 + 1)
            for i, f in enumerate(freqs)
        )
        out.append(note * _envelope(n, sample_rate) / len(freqs) ** 0.5)
        if rng.random() < 0.3:
            out.append(np.zeros(int(rng.uniform(0.05, 0.3) * sample_rate)))
    return np.concatenate(out)[:total].astype(np.float32)


def nonspeech(
    kind: str, duration_s: float, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """``duration_s`` of non-speech ``kind`` (see :data:`NONSPEECH_KINDS`), peak below 0.9."""
    n = int(duration_s * sample_rate)
    if kind == "noise":
        audio = colored_noise(n, rng, str(rng.choice(list(_NOISE_COLOURS))))
    elif kind in ("tones", "chords"):
        audio = _notes(duration_s, sample_rate, rng, chord=kind == "chords")
    elif kind == "silence":
        audio = colored_noise(n, rng, "pink") * 10 ** (rng.uniform(-70, -50) / 20)
    else:
        raise ValueError(f"unknown non-speech kind {kind!r}; use one of {NONSPEECH_KINDS}")
    peak = float(np.max(np.abs(audio))) + 1e-12
    level = 1.0 if kind == "silence" else rng.uniform(0.1, 0.8) / peak
    return (audio * min(level, 0.9 / peak)).astype(np.float32)


def add_noise(speech: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix coloured noise under ``speech`` at ``snr_db`` (power ratio over the whole clip)."""
    noise = colored_noise(len(speech), rng, str(rng.choice(list(_NOISE_COLOURS))))
    power = float(np.mean(speech**2))
    return (speech + noise * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)
