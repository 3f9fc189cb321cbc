"""A real pretrained LLM end to end: SmolLM2-135M-Instruct (GGUF, from the package registry).

Our prompt path must leave a real model intact: its BPE tokenizer, special tokens and chat
format give the same logits and greedy answers as Hugging Face's own path, a text question
asked through SpeechLLM is answered, and LoRA attach/merge/export/reload keep the outputs.
The model is fetched once into the shared cache (``speechllm-fetch smollm2``).
"""

from __future__ import annotations

import contextlib
import io
from functools import partial
from pathlib import Path

import pytest
import soundfile as sf
import torch
from peft import LoraConfig

from speechllm.cli.fetch import main as fetch_main
from speechllm.cli.infer import main as infer
from speechllm.models import LLM, AudioEncoder, ConvDownsampler, SpeechLLM
from speechllm.models.tiny import save_tiny_twin
from tests.fetched import fetched

QUESTION = "What is the capital of France? Answer in one sentence."
USER = "<audio>{audio}</audio>\n{instruction}"


@pytest.fixture(scope="module")
def gguf() -> Path:
    path = fetched("smollm2")
    assert path.is_file()
    return path


def test_fetch_help_names_the_checkpoints(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        fetch_main(["--help"])
    assert "smollm2" in capsys.readouterr().out


@pytest.fixture(scope="module")
def llm(gguf: Path) -> LLM:
    lora = LoraConfig(r=8, target_modules=["q_proj", "v_proj"])
    return LLM.from_pretrained(str(gguf), adapters={"default": lora})


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_twin("whisper", tmp_path_factory.mktemp("enc") / "whisper")


def chat_ids(llm: LLM, text: str) -> torch.Tensor:
    rendered = llm.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
    )
    return torch.tensor([llm.tokenizer(rendered, add_special_tokens=False)["input_ids"]])


def speech_llm(llm: LLM, encoder_dir: Path, **kwargs) -> SpeechLLM:
    torch.manual_seed(0)
    encoder = AudioEncoder.from_pretrained(str(encoder_dir))
    downsampler = partial(ConvDownsampler, strides=[2, 2])
    return SpeechLLM(encoder, downsampler, llm, USER, chat_template=True, **kwargs).eval()


def test_gguf_loads_as_the_real_llama(llm: LLM) -> None:
    assert type(llm.base_model).__name__ == "LlamaForCausalLM"
    assert 134e6 < sum(p.numel() for p in llm.base_model.parameters()) < 136e6
    assert llm.tokenizer.eos_token == "<|im_end|>"


@torch.no_grad()
def test_our_prompt_path_matches_hugging_face(llm: LLM) -> None:
    ids = chat_ids(llm, QUESTION)
    mask = torch.ones_like(ids)
    reference = llm.base_model(input_ids=ids).logits
    ours = llm(llm.embed(ids), mask)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    expected = llm.base_model.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1] :]
    answer = llm.generate(llm.embed(ids), mask, max_new_tokens=12, do_sample=False)[0]
    assert answer.tolist() == expected.tolist()
    assert "Paris" in llm.tokenizer.decode(answer)


def test_chat_prompt_has_one_format_no_extra_bos_and_a_clean_answer_seam(
    llm: LLM, encoder_dir: Path
) -> None:
    model = speech_llm(llm, encoder_dir)
    pieces = model.layout.prompt_ids(QUESTION)
    texts = model.template.pieces(QUESTION)  # the chat text around the audio slot
    assert texts[0].startswith("<|im_start|>system\n") and texts[-1].endswith("assistant\n")
    # nothing prepended: the chat format already holds every special token the model expects
    assert pieces == [llm.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert pieces[0][0] == llm.tokenizer.bos_token_id != pieces[0][1]
    rendered = model.template.text(QUESTION, audio="")
    # the answer is tokenised as the model writes it after its generation prompt
    target = [model.layout.target_ids(t) for t in ["The capital of France is Paris."]][0]
    full = llm.tokenizer(
        rendered + "The capital of France is Paris.<|im_end|>", add_special_tokens=False
    )
    assert full["input_ids"][-len(target) :] == target


def test_a_text_question_through_speech_llm_is_answered(llm: LLM, encoder_dir: Path) -> None:
    model = speech_llm(llm, encoder_dir)
    audio = torch.zeros(1, 80, 100)  # 1 s of (silent) log-mel for the tiny Whisper
    answer = model.generate(audio, torch.tensor([100]), [QUESTION], max_new_tokens=16)[0]
    assert "Paris" in answer


def test_bfloat16_runs(gguf: Path, encoder_dir: Path) -> None:
    llm = LLM.from_pretrained(str(gguf), dtype=torch.bfloat16)
    assert llm.base_model.dtype == torch.bfloat16
    model = speech_llm(llm, encoder_dir)
    audio = torch.zeros(1, 80, 100)
    out = model(audio, torch.tensor([100]), [QUESTION], ["Paris."])
    assert torch.isfinite(out.loss)
    assert model.generate(audio, torch.tensor([100]), [QUESTION], max_new_tokens=4)


def test_lora_merge_export_reload_and_infer_keep_the_outputs(
    llm: LLM, gguf: Path, encoder_dir: Path, tmp_path: Path
) -> None:
    model = speech_llm(llm, encoder_dir)
    model.set_trainable(["downsampler", "layer_weights", "lora"])
    with torch.no_grad():
        for p in model.llm.adapter_parameters("default"):
            p.normal_(std=0.02)
    model.eval()
    audio, lengths = torch.randn(1, 80, 100), torch.tensor([100])
    with torch.no_grad():
        before = model(audio, lengths, [QUESTION], ["Paris."]).item_loss_sum
    lora = {"_target_": "peft.LoraConfig", "r": 8, "target_modules": ["q_proj", "v_proj"]}
    node = {
        "_target_": "speechllm.models.SpeechLLM",
        "encoder": {
            "_target_": "speechllm.models.AudioEncoder.from_pretrained",
            "name_or_path": str(encoder_dir),
        },
        "downsampler": {
            "_target_": "speechllm.models.ConvDownsampler",
            "_partial_": True,
            "strides": [2, 2],
        },
        "llm": {
            "_target_": "speechllm.models.LLM.from_pretrained",
            "name_or_path": str(gguf),
            "adapters": {"default": lora},
        },
        "prompt_template": USER,
        "chat_template": True,
    }
    export = model.save_pretrained(tmp_path / "export", node)
    reloaded = SpeechLLM.from_pretrained(export)
    with torch.no_grad():
        after = reloaded(audio, lengths, [QUESTION], ["Paris."]).item_loss_sum
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    merged = model.save_pretrained(tmp_path / "merged", node, merge_lora=True)
    with torch.no_grad():
        folded = SpeechLLM.from_pretrained(merged)(audio, lengths, [QUESTION], ["Paris."])
    torch.testing.assert_close(folded.item_loss_sum, before, atol=1e-3, rtol=1e-3)

    clip = tmp_path / "clip.wav"
    sf.write(clip, torch.zeros(16000).numpy(), 16000)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        infer([str(clip), QUESTION, "--model", str(merged), "--max-new-tokens", "4"])
    assert printed.getvalue().strip()
