"""The tiny smoke model pushed to a Hub stand-in and loaded back by id, online and offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError
from hydra.utils import instantiate
from omegaconf import OmegaConf

from speechllm.config import compose
from speechllm.models import SpeechLLM
from speechllm.models.hub import EXPORT_FILES
from speechllm.models.pretrained import load
from tests.models.hub_standin import HubStandIn
from tests.models.test_pretrained import outputs

REPO = "speechllm-org/tiny-smoke"


@pytest.fixture
def tiny_smoke(tmp_path: Path) -> tuple[SpeechLLM, dict[str, Any]]:
    """``experiment=tiny_smoke``'s model with trainable parts moved off their init."""
    cfg = compose(["experiment=tiny_smoke"], output_dir=tmp_path)
    node = OmegaConf.to_container(cfg.module.model, resolve=True)
    model: SpeechLLM = instantiate(node, _convert_="all")
    model.set_trainable(["downsampler", "layer_weights", "lora"])
    perturb(model)
    return model.eval(), node


def perturb(model: SpeechLLM) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn_like(p))


def assert_same(a: tuple[torch.Tensor, list[str]], b: tuple[torch.Tensor, list[str]]) -> None:
    torch.testing.assert_close(a[0], b[0])
    assert a[1] == b[1]


def test_push_then_load_by_id_online_then_offline_at_each_revision(
    tiny_smoke, hub: HubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, node = tiny_smoke
    first_outputs = outputs(model)
    first = model.push_to_hub(REPO, node, token=hub.token)
    pushed = set(hub.repos[REPO].files("main")[1])
    assert {"config.json", "trainable.safetensors", "README.md"} <= pushed
    assert {p.split("/")[0] for p in pushed} == {
        *(p.split("/")[0] for p in EXPORT_FILES),
        "README.md",
    }
    perturb(model)
    second_outputs = outputs(model)
    assert not torch.equal(first_outputs[0], second_outputs[0])  # the revisions differ
    model.push_to_hub(REPO, node, token=hub.token)
    api = HfApi(token=hub.token)  # someone adds files the loader must never fetch
    for junk in ("pytorch_model.bin", "modeling_evil.py", "notes/train.log"):
        api.upload_file(path_or_fileobj=b"junk", path_in_repo=junk, repo_id=REPO)
    assert hub.repos[REPO].pushes == 5

    cache = tmp_path / "hub-cache"
    online = SpeechLLM.from_pretrained(REPO, revision=first.oid, cache_dir=cache)
    assert_same(outputs(online), first_outputs)
    latest = load(REPO, cache_dir=cache)
    assert_same(outputs(latest), second_outputs)
    snapshots = list(cache.glob("*/snapshots/*"))
    fetched = {str(p.relative_to(s)) for s in snapshots for p in s.rglob("*") if p.is_file()}
    assert "config.json" in fetched
    assert (
        fetched & {"pytorch_model.bin", "modeling_evil.py", "notes/train.log", "README.md"} == set()
    )

    hub.stop()  # gone from the network: what follows can only come from the cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert_same(outputs(load(REPO, cache_dir=cache)), second_outputs)
    offline_first = SpeechLLM.from_pretrained(REPO, revision=first.oid, cache_dir=cache)
    assert_same(outputs(offline_first), first_outputs)


def test_push_needs_a_write_token(tiny_smoke, hub: HubStandIn) -> None:
    model, node = tiny_smoke
    with pytest.raises(HfHubHTTPError, match="401"):
        model.push_to_hub(REPO, node, token="hf_wrong")
    assert REPO not in hub.repos


def test_unknown_id_says_neither_folder_nor_hub(hub: HubStandIn, tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match="speechllm-org/missing: no such local folder, and no export on the Hub",
    ):
        load("speechllm-org/missing", cache_dir=tmp_path)


def test_offline_without_a_cached_copy_is_a_clear_error(tmp_path: Path) -> None:
    assert constants.HF_HUB_OFFLINE  # tests run offline (conftest)
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        load(REPO, cache_dir=tmp_path)


def test_a_path_that_is_not_there_is_not_sent_to_the_hub(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="expected an export folder"):
        load(tmp_path / "nowhere" / "x.ckpt")
