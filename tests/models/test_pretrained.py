import json
import os
import stat
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from speechllm.models import SpeechLLM
from speechllm.models.pretrained import load
from speechllm.models.tiny import save_tiny_export
from speechllm.testing import tiny_batches

NODE = {
    "_target_": "speechllm.models.SpeechLLM",
    "encoder": {"_target_": "speechllm.models.tiny.tiny_encoder", "kind": "wavlm"},
    "downsampler": {"_target_": "speechllm.models.ConvDownsampler", "_partial_": True},
    "llm": {
        "_target_": "speechllm.models.tiny.tiny_llm",
        "kind": "llama",
        "adapters": {
            name: {
                "_target_": "peft.LoraConfig",
                "r": 4,
                "lora_alpha": 8,
                "target_modules": ["q_proj", "v_proj"],
            }
            for name in ("domain", "task")
        },
    },
    "prompt_template": "<audio>{audio}</audio> {instruction}: ",
}


@pytest.fixture
def trained() -> SpeechLLM:
    """A tiny model whose trainable parts (adapters included) are far from their init."""
    torch.manual_seed(0)
    model: SpeechLLM = instantiate(NODE, _convert_="all")
    model.set_trainable(["downsampler", "layer_weights", "lora"])
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn_like(p))
    return model.eval()


def outputs(model: SpeechLLM) -> tuple[torch.Tensor, list[str]]:
    batch = tiny_batches(1, 3, seed=5)[0]
    loss = model(**batch).item_loss_sum
    text = model.generate(
        batch["audio"],
        batch["audio_lengths"],
        batch["instructions"],
        max_new_tokens=6,
        suppress_tokens=[0, 1, 2, 3],
    )
    return loss, text


def test_save_and_load_gives_the_same_model(trained, tmp_path) -> None:
    out = trained.save_pretrained(tmp_path / "export", NODE)
    assert sorted(p.name for p in (out / "adapters").iterdir()) == ["domain", "task"]
    assert (out / "adapters" / "task" / "adapter_config.json").exists()
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))  # nothing to unpickle
    config = json.loads((out / "config.json").read_text())["model"]
    assert config["encoder"]["name_or_path"] == "./encoder"  # tiny bases are written out
    loaded = SpeechLLM.from_pretrained(out)
    assert set(loaded.llm.active_adapters) == {"domain", "task"}
    (loss_a, text_a), (loss_b, text_b) = outputs(trained), outputs(loaded)
    torch.testing.assert_close(loss_a, loss_b)
    assert text_a == text_b


def test_merged_export_matches_unmerged(trained, tmp_path) -> None:
    reference_loss, reference_text = outputs(trained)
    out = trained.save_pretrained(tmp_path / "merged", NODE, merge_lora=True)
    assert not (out / "adapters").exists()
    merged = SpeechLLM.from_pretrained(out)
    assert merged.llm.attached_adapters == []
    loss, text = outputs(merged)
    torch.testing.assert_close(loss, reference_loss, atol=1e-4, rtol=1e-4)
    assert text == reference_text


def test_missing_trainable_weights_are_an_error(trained) -> None:
    state = trained.trainable_state_dict()
    state.pop(next(k for k in state if k.startswith("downsampler")))
    with pytest.raises(KeyError, match="missing"):
        trained.load_trainable_state_dict(state, [])


def test_bases_in_the_fetch_cache_are_written_cache_relative(tmp_path, monkeypatch) -> None:
    """An export on fetched bases (speechllm-fetch) loads where the cache lives elsewhere."""
    from speechllm.models.tiny import save_tiny_twin

    monkeypatch.setenv("SPEECHLLM_CACHE", str(tmp_path / "cache_a"))
    encoder_dir = save_tiny_twin("wavlm", tmp_path / "cache_a" / "enc")
    loader = "speechllm.models.AudioEncoder.from_pretrained"
    node = {**NODE, "encoder": {"_target_": loader, "name_or_path": str(encoder_dir)}}
    torch.manual_seed(0)
    model: SpeechLLM = instantiate(node, _convert_="all").eval()
    out = model.save_pretrained(tmp_path / "export", node)
    saved = json.loads((out / "config.json").read_text())["model"]["encoder"]["name_or_path"]
    assert saved == "{speechllm_cache}/enc"
    (tmp_path / "cache_a").rename(tmp_path / "cache_b")
    monkeypatch.setenv("SPEECHLLM_CACHE", str(tmp_path / "cache_b"))
    loaded = SpeechLLM.from_pretrained(out)
    batch = tiny_batches(1, 2, seed=1)[0]
    torch.testing.assert_close(model(**batch).loss, loaded(**batch).loss)


def test_export_is_readable_by_other_users(tmp_path) -> None:
    """safetensors writes 0600; a server running as another user must read the export."""
    old = os.umask(0o077)  # a strict umask too: the export's modes do not depend on it
    try:
        out = save_tiny_export(tmp_path / "export")
    finally:
        os.umask(old)
    modes = {p.relative_to(out): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*")}
    assert modes[Path("trainable.safetensors")] == 0o644
    assert any(p.parts[0] == "adapters" for p in modes)  # peft's weights are covered too
    assert {m for p, m in modes.items() if (out / p).is_file()} == {0o644}
    assert {m for p, m in modes.items() if (out / p).is_dir()} == {0o755}
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_load_gives_the_model_on_its_device_in_eval_mode(tmp_path: Path) -> None:
    export = save_tiny_export(tmp_path / "export")
    model = load(export, "meta")
    assert not model.training and {p.device.type for p in model.parameters()} == {"meta"}
