"""The encoder bootstrap trains through ``AudioEncoder``'s windows and saves a loadable encoder."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "recipes" / "synthetic_tiny"))

from bootstrap_encoder import Item, Pretrainer  # noqa: E402

from speechllm.models.encoder import AudioEncoder  # noqa: E402
from speechllm.models.tiny import tiny_whisper_encoder  # noqa: E402


def _pretrainer() -> Pretrainer:
    torch.manual_seed(0)
    encoder = tiny_whisper_encoder(last_layer_only=True, dropout=0.0)
    return Pretrainer(encoder, {"gr": ["female", "male"]}, aux_layer=1)


def test_windows_are_encoded_one_by_one_and_stitched_with_gradients() -> None:
    model = _pretrainer()
    features = torch.randn(2, 80, 200)  # two 1 s windows each
    top, aux, frames = model(features, torch.tensor([200, 150]))
    # the reference: every window through the bare WhisperEncoder, concatenated in time
    windows = features.reshape(2, 80, 2, 100).permute(0, 2, 1, 3).flatten(0, 1)
    hidden = model.encoder.model(windows, output_hidden_states=True).hidden_states
    torch.testing.assert_close(top, hidden[-1].reshape(2, 100, -1))
    torch.testing.assert_close(aux, hidden[1].reshape(2, 100, -1))
    assert frames.tolist() == [100, 75]
    assert top.requires_grad


def test_everything_trains_but_the_fixed_positions() -> None:
    model = _pretrainer()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["encoder.model.embed_positions.weight"]
    items = [
        Item(torch.randn(80, 100), 90, [3, 4], {"gr": 1}),
        Item(torch.randn(80, 100), 60, None, {}),
    ]
    loss = model.loss(items, torch.stack([i.features for i in items]), aux_weight=0.1)
    loss.backward()
    assert model.heads["gr"].weight.grad is not None
    assert model.encoder.model.conv1.weight.grad is not None


def test_the_saved_encoder_loads_as_a_pretrained_one(tmp_path: Path) -> None:
    model = _pretrainer()
    model.encoder.save_pretrained(tmp_path)
    loaded = AudioEncoder.from_pretrained(str(tmp_path))
    assert type(loaded.model).__name__ == "WhisperEncoder"
    assert loaded.window_frames == model.encoder.window_frames == 100
    for a, b in zip(loaded.model.parameters(), model.encoder.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
