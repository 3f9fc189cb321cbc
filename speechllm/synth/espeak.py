"""A ctypes wrapper around libespeak-ng, the speech engine behind the synthetic benchmark."""

from __future__ import annotations

import _ctypes
import ctypes
from dataclasses import dataclass
from functools import cache

import espeakng_loader
import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_LIBC = ctypes.CDLL(None)
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True)
class Prosody:
    """eSpeak's prosody knobs, in its own units."""

    rate: int = 175
    """Words per minute (80..450)."""
    pitch: int = 50
    """Base pitch (0..100) relative to the voice's own pitch."""
    range: int = 50
    """Pitch range (0..100): 0 is monotone."""
    volume: int = 100
    """Amplitude (0..200)."""

    def __post_init__(self) -> None:
        for name, low, high in (
            ("rate", 80, 450),
            ("pitch", 0, 100),
            ("range", 0, 100),
            ("volume", 0, 200),
        ):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"Prosody.{name}={getattr(self, name)} not in [{low}, {high}]")


class Engine:
    """Synthesises text into int16 samples at :attr:`SAMPLE_RATE`.

    eSpeak NG keeps phase accumulators in C statics that survive ``espeak_Terminate`` and
    seeds its noise generators from the clock, so an utterance would depend on when and after
    what it was spoken. Loading the library afresh for every utterance (about 1 ms) and fixing
    the seed make the output a function of the arguments alone, which the benchmark's
    byte-level determinism needs. Not thread-safe: one engine per process.
    """

    SAMPLE_RATE = 22050

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        # Keep a reference: ctypes would free the trampoline while C still calls it.
        self._callback = _CALLBACK(self._collect)

    def _collect(self, wav: ctypes.Array, n: int, _events: int) -> int:
        if n > 0:
            self._chunks.append(ctypes.string_at(wav, 2 * n))
        return 0

    def synth(self, text: str, voice: str, prosody: Prosody) -> np.ndarray:
        """Speak ``text`` with ``voice`` (e.g. ``en-us+f3``); returns int16 samples."""
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        try:
            self._synth(lib, text, voice, prosody)
        finally:
            lib.espeak_Terminate()
            _ctypes.dlclose(lib._handle)
        return np.frombuffer(b"".join(self._chunks), dtype=np.int16)

    def _synth(self, lib: ctypes.CDLL, text: str, voice: str, prosody: Prosody) -> None:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        if lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0) != self.SAMPLE_RATE:
            raise RuntimeError("espeak_Initialize failed")
        lib.espeak_ng_SetRandSeed(0)
        _LIBC.srand(0)  # the Klatt voices still draw noise from libc's rand()
        lib.espeak_SetSynthCallback(self._callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}")
        for param, value in (
            (_RATE, prosody.rate),
            (_VOLUME, prosody.volume),
            (_PITCH, prosody.pitch),
            (_RANGE, prosody.range),
        ):
            lib.espeak_SetParameter(param, value, 0)
        self._chunks = []
        data = text.encode() + b"\0"
        if lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None):
            raise RuntimeError(f"espeak_Synth failed for {text!r}")
        lib.espeak_Synchronize()


@cache
def engine() -> Engine:
    """The process's engine."""
    return Engine()
