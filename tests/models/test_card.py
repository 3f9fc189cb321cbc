"""The model card: Hub metadata for both bases, and what is referenced vs copied."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard

from speechllm.models.card import Base, CardInfo, model_card

ENCODER, LLM = "openai/whisper-large-v3", "Qwen/Qwen2.5-7B-Instruct"
TRAINING = {
    "trainer": {"max_steps": 5000},
    "curriculum": {
        "stages": {
            "align": {"trainable": ["downsampler"], "tasks": {"asr": 1.0}, "steps": 2000},
            "multitask": {"trainable": ["lora"], "tasks": {"asr": 1.0, "st": 0.5}, "steps": None},
        }
    },
    "data": {"train_manifests": ["/data/librispeech/train.jsonl", "/data/covost/train.jsonl"]},
}


def card(bases: list[Base], **info) -> str:
    return model_card(
        CardInfo(**info), bases, "<a>{audio}</a>\n{instruction}", ["default"], 1234, "o/m"
    )


def test_referenced_bases_are_both_base_models() -> None:
    text = card([Base("encoder", ENCODER, None), Base("llm", LLM, None)], training=TRAINING)
    data = ModelCard(text).data
    assert data.base_model == [ENCODER, LLM]
    assert data.base_model_relation == "adapter"
    assert (data.library_name, data.pipeline_tag) == ("speechllm", "audio-text-to-text")
    assert data.language == ["en"] and "lora" in data.tags
    assert f"| llm | `{LLM}` | referenced |" in text
    assert "`asr`, `st`" in text
    assert "| multitask | to the end (max_steps=5000) | lora | asr (1.0), st (0.5) |" in text
    assert "- `librispeech/train.jsonl`" in text and "1,234 parameters" in text
    assert 'model = load_model("o/m")' in text
    assert '- prompt template: `"<a>{audio}</a>\\n{instruction}"`' in text  # one line


def test_a_merged_llm_is_copied_and_says_why() -> None:
    merged = Base("llm", LLM, "the LoRA adapters (default) are merged into it")
    text = card([Base("encoder", ENCODER, None), merged], license="apache-2.0")
    data = ModelCard(text).data
    assert data.base_model == [ENCODER, LLM]  # still derived from both
    assert data.get("base_model_relation") is None
    assert data.license == "apache-2.0"
    assert "| llm | `Qwen/Qwen2.5-7B-Instruct` | copied into `llm/`: the LoRA adapters" in text


def test_config_built_bases_have_no_hub_id(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "llm").mkdir()
    bases = [
        Base("encoder", "speechllm.models.tiny.tiny_encoder", "built"),
        Base("llm", "local/llm", None),
    ]
    assert ModelCard(card(bases)).data.base_model is None


def test_without_run_or_eval_the_card_says_so(tmp_path: Path) -> None:
    text = card([Base("encoder", ENCODER, None), Base("llm", LLM, None)], evaluation=tmp_path)
    assert "## Tasks\n\nnot recorded" in text
    assert "## Curriculum" not in text
    assert "No evaluation report: run `speechllm-eval`" in text
