"""speechllm-export --push-to-hub on the tiny smoke run: its card, then load by id offline.

The card is written from the run (its ``hparams.yaml``) and a ``speechllm-eval`` report; the
model pushed to the Hub stand-in and loaded back by id with the Hub offline answers exactly
as the checkpoint does, and the card's usage snippet runs as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, constants

from speechllm.cli.export import main as export_main
from speechllm.evaluation.decoding import DecodingConfig
from speechllm.evaluation.run import evaluate
from speechllm.inference import answer
from speechllm.models.pretrained import load
from tests.models.hub_standin import HubStandIn, online
from tests.models.test_pretrained import outputs
from tests.tiny_run import TinyRun

REPO = "speechllm-org/tiny-smoke"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    yield from online(monkeypatch)


def section(card: str, title: str) -> str:
    return card.split(f"\n## {title}\n")[1].split("\n## ")[0].strip()


def test_export_push_and_load_by_id_offline(
    tiny_run: TinyRun,
    hub: HubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trained = load(tiny_run.checkpoint)
    reference = outputs(trained)
    audio = tiny_run.test.parent / json.loads(tiny_run.test.read_text().splitlines()[0])["audio"]
    reference_answer = answer(trained, audio, "Transcribe the audio.")
    eval_dir = tmp_path / "eval"
    evaluate(
        load(tiny_run.export),
        [str(tiny_run.test)],
        eval_dir,
        DecodingConfig(max_new_tokens=4),
        limit=4,
    )
    monkeypatch.setenv("HF_TOKEN", hub.token)
    out = tmp_path / "export"
    args = [str(tiny_run.checkpoint), str(out), "--push-to-hub", REPO, "--eval", str(eval_dir)]
    export_main([*args, "--license", "apache-2.0", "--dataset", "openslr/librispeech_asr"])

    card_text = (out / "README.md").read_text()
    assert hub.repos[REPO].files("main")[1]["README.md"].decode() == card_text
    card = ModelCard(card_text)
    assert card.data.license == "apache-2.0"
    assert card.data.library_name == "speechllm"
    assert card.data.pipeline_tag == "audio-text-to-text"
    assert card.data.datasets == ["openslr/librispeech_asr"]
    assert card.data.base_model is None  # tiny bases are built from a config: copied, no id
    assert "| encoder | `speechllm.models.tiny.tiny_encoder` | copied into `encoder/`" in card_text
    assert section(card_text, "Tasks") == "`asr`, `ic`"
    assert tiny_run_stages(card_text) == [
        ["align", "3", "downsampler, layer_weights", "asr (1.0)"],
        ["lora_warmup", "3", "downsampler, layer_weights, lora", "asr (1.0)"],
        [
            "multitask",
            "to the end (max_steps=9)",
            "downsampler, layer_weights, lora",
            "asr (1.0), ic (1.0)",
        ],
    ]
    report = (eval_dir / "report.md").read_text()
    per_task = section(report, "Per task")
    assert per_task and per_task in section(card_text, "Evaluation")

    cache = tmp_path / "hub-cache"
    load(REPO, cache_dir=cache)  # online: fills the cache
    hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    loss, text = outputs(load(REPO))
    assert loss.equal(reference[0]) and text == reference[1]

    snippet = re.search(r"```python\n(.*?)```", card_text, re.S).group(1)
    assert f'load_model("{REPO}")' in snippet
    capsys.readouterr()
    exec(snippet.replace("clip.wav", str(audio)), {})  # the card's own code, by id, offline
    assert capsys.readouterr().out == reference_answer + "\n"


def tiny_run_stages(card: str) -> list[list[str]]:
    rows = section(card, "Curriculum").splitlines()[2:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_export_help_names_the_hub_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        export_main(["--help"])
    assert exit_info.value.code == 0
    assert "--push-to-hub ORG/NAME" in capsys.readouterr().out
