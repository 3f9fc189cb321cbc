"""One recording through ``inference``: the guarded resampler, one refusal of too-short audio
whether alone or batched, and no autograd state while answering."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import soundfile as sf
import torch

import speechllm.data.audio as audio_module
from speechllm.data.errors import AudioError
from speechllm.data.features import Featurizer, collate_features
from speechllm.inference import answer, featurize
from speechllm.models import SpeechLLM
from speechllm.models.tiny import save_tiny_export

TOKENS = 3


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SpeechLLM:
    """An untrained tiny export (WavLM encoder: a 400-sample receptive field)."""
    return SpeechLLM.from_pretrained(save_tiny_export(tmp_path_factory.mktemp("export"))).eval()


def test_a_waveform_at_an_odd_rate_goes_through_the_guarded_resampler(
    model: SpeechLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4001 Hz -> 16 kHz is a 64M-element sinc kernel unguarded (4 s, +1 GB for 1 s)."""
    calls: list[tuple[int, int]] = []
    guarded = audio_module.resample

    def spy(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
        calls.append((orig, new))
        return guarded(waveform, orig, new)

    monkeypatch.setattr(audio_module, "resample", spy)
    features, lengths = featurize(model, torch.zeros(4001), sampling_rate=4001)
    assert calls == [(4001, 16_000)] and int(lengths[0]) == 16_000
    assert isinstance(
        answer(model, torch.randn(4001) * 0.1, "Say it.", 4001, max_new_tokens=3), str
    )


@pytest.mark.parametrize("rate", [1, 10**9])
def test_a_waveform_at_an_absurd_rate_is_refused(model: SpeechLLM, rate: int) -> None:
    with pytest.raises(AudioError) as caught:
        answer(model, torch.zeros(100), "Say it.", rate, max_new_tokens=TOKENS)
    assert caught.value.reason == "bad_sample_rate"


@pytest.mark.parametrize("samples", [1, 10, -1])
def test_audio_shorter_than_one_encoder_frame_is_refused_alone_or_batched(
    model: SpeechLLM, samples: int, tmp_path: Path
) -> None:
    """Alone it crashed in the encoder ("Kernel size can't be greater..."); batched with a
    longer clip it passed as an item of no audio frames. ``-1``: one sample short of a frame."""
    shortest = model.encoder.min_samples  # the tiny WavLM's receptive field
    assert int(model.encoder.output_lengths(torch.tensor([shortest - 1, shortest]))[1]) == 1
    samples = samples if samples > 0 else shortest - 1
    clip = torch.randn(samples) * 0.1
    with pytest.raises(AudioError, match="shorter than one encoder frame") as caught:
        answer(model, clip, "Say it.", max_new_tokens=TOKENS)
    assert caught.value.reason == "too_short"
    sf.write(tmp_path / "short.wav", clip.numpy(), 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="short.wav"):
        answer(model, tmp_path / "short.wav", "Say it.", max_new_tokens=TOKENS)
    featurizer = Featurizer(model.encoder.feature_extractor)
    alone = collate_features([featurizer(clip)])
    batched = collate_features([featurizer(torch.randn(16_000) * 0.1), featurizer(clip)])
    for (audio, lengths), short in ((alone, [0]), (batched, [1])):
        with pytest.raises(ValueError, match=re.escape(f"item(s) {short} (")):
            model.generate(audio, lengths, ["Say it."] * len(lengths), max_new_tokens=TOKENS)


def test_one_encoder_frame_is_enough(model: SpeechLLM) -> None:
    clip = torch.randn(model.encoder.min_samples) * 0.1
    assert isinstance(answer(model, clip, "Say it.", max_new_tokens=TOKENS), str)


def test_answering_keeps_no_autograd_state(model: SpeechLLM) -> None:
    seen: list[tuple[bool, bool]] = []
    hook = model.encoder.register_forward_hook(
        lambda *_: seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
    )
    try:
        answer(model, torch.randn(8000) * 0.1, "Say it.", max_new_tokens=TOKENS)
    finally:
        hook.remove()
    assert seen == [(False, True)]
