"""One answer for one recording: load a model, featurize a file or waveform, generate; or, for a
text classifier, one text's label probabilities (:func:`classify_text`).

The batch path (``SpeechLLM.generate``) takes encoder-ready tensors; these helpers bridge a
user's audio (any file, any rate, any channel count) to it, and stream tokens for a CLI or UI.
``load_model`` is the one loader serving and evaluation use too
(:func:`speechllm.models.pretrained.load`), under the name model cards print.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import TextIteratorStreamer

from speechllm.data.audio import MAX_SECONDS, load_audio, prepare_waveform
from speechllm.data.errors import AudioError
from speechllm.data.features import Featurizer, collate_features
from speechllm.data.text_classification import MAX_TEXT_CHARS
from speechllm.models.pretrained import load as load_model
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.text_classifier import TextClassifier

__all__ = ["answer", "classify_text", "featurize", "load_model", "stream_answer"]


def featurize(
    model: SpeechLLM,
    audio: str | Path | torch.Tensor,
    sampling_rate: int | None = None,
    max_seconds: float | None = MAX_SECONDS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-item batch ``(audio, audio_lengths)`` on the model's device.

    A file is decoded and a waveform resampled by the data layer's guarded path (header and
    rate checked, length capped, bounded resampler), and audio too short for one encoder frame
    is refused here, as :meth:`AudioEncoder.check_lengths` refuses it in any batch.

    Args:
        model: The speech LLM whose encoder sets the rate and features.
        audio: An audio file, or a waveform ``(samples,)`` or ``(channels, samples)``.
        sampling_rate: The waveform's rate; ``None`` means it is already the encoder's.
        max_seconds: Longest audio accepted; ``None``: no cap.

    Raises:
        AudioError: The audio is unreadable, too long, too short, or at an absurd rate.
    """
    rate = model.encoder.sampling_rate
    if isinstance(audio, torch.Tensor):
        name = "waveform"
        given = rate if sampling_rate is None else sampling_rate
        waveform = prepare_waveform(audio.cpu(), given, rate, name, max_seconds)
    else:
        name = str(audio)
        waveform = load_audio(name, rate, max_seconds=max_seconds)
    if waveform.numel() < model.encoder.min_samples:
        raise AudioError(
            f"{name} is {waveform.numel() / rate * 1000:.3g} ms long: shorter than one encoder "
            f"frame ({model.encoder.min_samples / rate * 1000:g} ms)",
            reason="too_short",
        )
    features, lengths = collate_features([Featurizer.for_encoder(model.encoder)(waveform)])
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

    Runs under ``torch.inference_mode``: nothing here trains, so no autograd state is kept.

    Args:
        model: The speech LLM (in eval mode).
        audio: An audio file, or a waveform ``(samples,)`` or ``(channels, samples)``.
        instruction: What to do with the audio.
        sampling_rate: The waveform's rate; ``None`` means it is already the encoder's.
        **generate_kwargs: ``SpeechLLM.generate`` settings (``max_new_tokens``, ``num_beams``,
            ``streamer``...).

    Raises:
        AudioError: As :func:`featurize`.
    """
    with torch.inference_mode():
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


def classify_text(
    model: TextClassifier, text: str, tasks: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """A text classifier's label probabilities for one text: ``task -> label -> probability``,
    each task's labels most probable first (one LLM pass per task, under ``inference_mode``).

    Args:
        model: The classifier (in eval mode).
        text: The text, e.g. an admission note; at most :data:`MAX_TEXT_CHARS` characters.
        tasks: Tasks to answer (default: every head's).

    Raises:
        ValueError: The text is empty or too long, or a task has no head.
    """
    if not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"a text of 1 to {MAX_TEXT_CHARS} characters, got {len(text)}")
    scores = model.label_probabilities([text], tasks or None)[0]
    return {task: dict(sorted(p.items(), key=lambda x: -x[1])) for task, p in scores.items()}
