"""One answer for one recording: load a model, featurize a file or waveform, generate.

The batch path (``SpeechLLM.generate``) takes encoder-ready tensors; these helpers bridge a
user's audio (any file, any rate, any channel count) to it, and stream tokens for a CLI or UI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torchaudio.functional as AF
from transformers import TextIteratorStreamer

from speechllm.data.audio import load_audio
from speechllm.data.features import Featurizer, collate_features
from speechllm.models.pretrained import load
from speechllm.models.speech_llm import SpeechLLM


def load_model(path: str | Path, device: str | torch.device = "cpu") -> SpeechLLM:
    """An export folder (``speechllm-export``) or a training ``.ckpt``, on ``device``, in eval
    mode."""
    return load(path).to(device).eval()


def featurize(
    model: SpeechLLM, audio: str | Path | torch.Tensor, sampling_rate: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-item batch ``(audio, audio_lengths)`` on the model's device.

    Args:
        model: The speech LLM whose encoder sets the rate and features.
        audio: An audio file, or a waveform ``(samples,)`` or ``(channels, samples)``.
        sampling_rate: The waveform's rate; ``None`` means it is already the encoder's.
    """
    rate = model.encoder.sampling_rate
    if isinstance(audio, torch.Tensor):
        waveform = audio.float().cpu()
        waveform = waveform.mean(0) if waveform.dim() == 2 else waveform
        if sampling_rate is not None and sampling_rate != rate:
            waveform = AF.resample(waveform, sampling_rate, rate)
    else:
        waveform = load_audio(str(audio), rate)
    featurizer = Featurizer(model.encoder.feature_extractor, not model.encoder.real_length)
    features, lengths = collate_features([featurizer(waveform)])
    device = next(model.parameters()).device
    return features.to(device), lengths.to(device)


def answer(
    model: SpeechLLM,
    audio: str | Path | torch.Tensor,
    instruction: str,
    sampling_rate: int | None = None,
    **generate_kwargs: Any,
) -> str:
    """The model's answer to ``instruction`` about one recording.

    Args:
        model: The speech LLM (in eval mode).
        audio: An audio file, or a waveform ``(samples,)`` or ``(channels, samples)``.
        instruction: What to do with the audio.
        sampling_rate: The waveform's rate; ``None`` means it is already the encoder's.
        **generate_kwargs: ``SpeechLLM.generate`` settings (``max_new_tokens``, ``num_beams``,
            ``streamer``...).
    """
    features, lengths = featurize(model, audio, sampling_rate)
    return model.generate(features, lengths, [instruction], **generate_kwargs)[0]


def stream_answer(
    model: SpeechLLM,
    audio: str | Path | torch.Tensor,
    instruction: str,
    sampling_rate: int | None = None,
    **generate_kwargs: Any,
) -> Iterator[str]:
    """:func:`answer` as text pieces while they are generated (generation runs in a thread).

    The pieces join to the same text :func:`answer` returns; an error in generation is raised
    here, after the pieces produced so far.
    """
    streamer = TextIteratorStreamer(model.llm.tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            answer(model, audio, instruction, sampling_rate, streamer=streamer, **generate_kwargs)
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)
            streamer.end()  # unblock the consumer

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if errors:
        raise errors[0]
