"""Tiny models built from configs: tests and the demo's bootstrap never download weights.

Each builder writes its hyperparameters out as literals (overridable by keyword), returns
the same wrapper a real checkpoint would give, and needs no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from peft import LoraConfig
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    HubertConfig,
    HubertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    WavLMConfig,
    WavLMModel,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from speechllm.models.encoder import AudioEncoder
from speechllm.models.llm import LLM

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (256 bytes + specials, no merges): any text, no download."""
    byte_vocab = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIALS + sorted(byte_vocab))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def _wave_config(cls: type, overrides: dict[str, Any]) -> Any:
    settings: dict[str, Any] = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16, 16),
        conv_stride=(5, 4, 4, 4),  # 320 samples: 20 ms frames, like the real models
        conv_kernel=(10, 8, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        hidden_dropout=0.1,
        attention_dropout=0.1,
        mask_time_prob=0.0,
    )
    settings.update(overrides)
    return cls(**settings)


STORED_DTYPES = {
    "whisper": torch.float16,
    "wavlm": torch.float32,
    "hubert": torch.float32,
    "wav2vec2": torch.float32,
    "llama": torch.bfloat16,
    "qwen2": torch.bfloat16,
    "gpt2": torch.float32,
    "t5": torch.float32,
}
"""The dtype each architecture's real hub checkpoint is stored in (Whisper-large-v3 fp16,
Llama-3.x/Qwen2.5 bf16, WavLM/HuBERT/wav2vec2-large, GPT-2 and Flan-T5 fp32): transformers 5
loads a checkpoint in its stored dtype, so the tiny twins are saved the same way."""


def tiny_encoder(
    kind: str = "whisper",
    last_layer_only: bool = False,
    cache_hidden_states: bool = False,
    dtype: str | torch.dtype | None = None,
    real_length: bool = True,
    **overrides: Any,
) -> AudioEncoder:
    """A tiny randomly initialised encoder: ``whisper`` (log-mel, 1 s windows), ``wavlm``,
    ``hubert`` or ``wav2vec2`` (raw waveform, 20 ms frames), with weights in ``dtype``."""
    model, extractor = _tiny_encoder_model(kind, overrides)
    return AudioEncoder(
        _cast(model, dtype), extractor, last_layer_only, cache_hidden_states, real_length
    )


def _cast(model: torch.nn.Module, dtype: str | torch.dtype | None) -> Any:
    """The weights themselves in ``dtype`` (a config's ``dtype`` field alone casts nothing)."""
    if dtype is None:
        return model
    return model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)


def tiny_whisper_encoder(
    window_seconds: int = 1,
    last_layer_only: bool = False,
    real_length: bool = False,
    **overrides: Any,
) -> AudioEncoder:
    """The tiny Whisper's encoder alone (a ``WhisperEncoder``), over ``window_seconds`` windows.

    Whole windows by default (``real_length`` off): the demo's bootstrap pretrains on them.

    For pretraining an encoder from scratch, as the CPU demo's bootstrap does: it saves what it
    trains, and ``AudioEncoder.from_pretrained`` loads the folder as a ``WhisperEncoder``. No
    decoder is built, so the random draws that follow (a recipe's heads) are the encoder's own.
    """
    config, extractor = _whisper(window_seconds, overrides)
    return AudioEncoder(WhisperEncoder(config), extractor, last_layer_only, real_length=real_length)


def _whisper(
    window_seconds: int, overrides: dict[str, Any]
) -> tuple[WhisperConfig, WhisperFeatureExtractor]:
    """The tiny Whisper config and its extractor: 100 mel frames a second, halved by the
    encoder's strided convolution, so a window holds ``50 * window_seconds`` positions."""
    settings: dict[str, Any] = dict(
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_source_positions=50 * window_seconds,
        dropout=0.1,
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    settings.update(overrides)
    config = WhisperConfig(**settings)
    extractor = WhisperFeatureExtractor(
        feature_size=config.num_mel_bins, chunk_length=window_seconds
    )
    return config, extractor


def _tiny_encoder_model(kind: str, overrides: dict[str, Any]) -> tuple[Any, Any]:
    if kind == "whisper":
        config, extractor = _whisper(1, overrides)
        model = WhisperModel(config)
    else:
        models_by_kind = {
            "wavlm": (WavLMConfig, WavLMModel),
            "hubert": (HubertConfig, HubertModel),
            "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model),
        }
        if kind not in models_by_kind:
            raise ValueError(
                f"unknown tiny encoder {kind!r}; use whisper or {list(models_by_kind)}"
            )
        config_cls, model_cls = models_by_kind[kind]
        extractor = Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        )
        model = model_cls(_wave_config(config_cls, overrides))
    return model, extractor


def tiny_llm(
    kind: str = "llama",
    adapters: dict[str, LoraConfig] | None = None,
    adapter_paths: dict[str, str] | None = None,
    dtype: str | torch.dtype | None = None,
    **overrides: Any,
) -> LLM:
    """A tiny randomly initialised LLM over the byte tokenizer: ``llama``, ``qwen2``, ``gpt2``
    or ``t5``, with weights in ``dtype``.

    ``adapter_paths`` loads trained peft adapters by name (see :class:`LLM`).
    """
    model, tokenizer = _tiny_llm_model(kind, overrides)
    return LLM(_cast(model, dtype).eval(), tokenizer, adapters, adapter_paths=adapter_paths)


def _tiny_llm_model(kind: str, overrides: dict[str, Any]) -> tuple[Any, PreTrainedTokenizerFast]:
    tokenizer = tiny_tokenizer()
    ids = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if kind in ("llama", "qwen2"):
        settings: dict[str, Any] = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            tie_word_embeddings=False,
            **ids,
        )
        if kind == "qwen2":  # as Qwen2.5-0.5B/1.5B: tied embeddings, prompts without a BOS
            tokenizer.bos_token = None
            settings.update(tie_word_embeddings=True, bos_token_id=None)
        settings.update(overrides)
        config_cls, model_cls = {
            "llama": (LlamaConfig, LlamaForCausalLM),
            "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        }[kind]
        model = model_cls(config_cls(**settings))
    elif kind == "gpt2":
        settings = dict(
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_positions=512,
            bos_token_id=tokenizer.bos_token_id,
            **ids,
        )
        settings.update(overrides)
        model = GPT2LMHeadModel(GPT2Config(**settings))
    elif kind == "t5":
        settings = dict(
            d_model=32,
            d_kv=16,
            d_ff=64,
            num_layers=2,
            num_heads=2,
            decoder_start_token_id=tokenizer.pad_token_id,
            **ids,
        )
        settings.update(overrides)
        model = T5ForConditionalGeneration(T5Config(**settings))
    else:
        raise ValueError(f"unknown tiny LLM {kind!r}; use llama, qwen2, gpt2 or t5")
    return model, tokenizer


CHAT_TEMPLATES = {
    "qwen2": (  # Qwen2.5-Instruct's ChatML, without its tool-calling branches
        "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are Qwen, created by "
        "Alibaba Cloud. You are a helpful assistant.<|im_end|>\n{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "llama": (  # Llama-3.x-Instruct's header format
        "<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
        "<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
        "{% endif %}"
    ),
}
"""The instruct families' chat formats, given to their twins' tokenizers (as text: the tiny
byte tokenizer spells the markup out byte by byte)."""


def save_tiny_twin(kind: str, path: str | Path, dtype: torch.dtype | None = None) -> Path:
    """A tiny random twin of a real checkpoint, saved as a Hugging Face folder.

    Same config class and model class as the real one (a full ``WhisperModel``, a
    ``Qwen2ForCausalLM``, ...), weights stored in the real checkpoint's dtype
    (:data:`STORED_DTYPES`) unless ``dtype`` says otherwise, so loading it through
    ``AudioEncoder.from_pretrained`` / ``LLM.from_pretrained`` takes the path a hub checkpoint
    takes, in the precision it would arrive in.

    Args:
        kind: an encoder (``whisper``, ``wavlm``, ``hubert``, ``wav2vec2``) or an LLM
            (``llama``, ``qwen2``, ``gpt2``, ``t5``).
        path: the folder to write.
        dtype: the stored dtype; default the real checkpoint's.
    """
    if kind not in STORED_DTYPES:
        raise ValueError(f"no tiny twin for {kind!r}; use one of {list(STORED_DTYPES)}")
    torch.manual_seed(0)
    if kind in ("whisper", "wavlm", "hubert", "wav2vec2"):
        model, processor = _tiny_encoder_model(kind, {})
    else:
        model, processor = _tiny_llm_model(kind, {})
    _cast(model, dtype or STORED_DTYPES[kind]).save_pretrained(path)
    if kind in CHAT_TEMPLATES:  # the instruct family's chat format, as its hub tokenizer has
        processor.chat_template = CHAT_TEMPLATES[kind]
    processor.save_pretrained(path)
    return Path(path)


TINY_EXPORT_NODE: dict[str, Any] = {
    "_target_": "speechllm.models.SpeechLLM",
    "encoder": {"_target_": "speechllm.models.tiny.tiny_encoder", "kind": "wavlm"},
    "downsampler": {"_target_": "speechllm.models.ConvDownsampler", "_partial_": True},
    "llm": {
        "_target_": "speechllm.models.tiny.tiny_llm",
        "kind": "llama",
        "adapters": {
            "task": {
                "_target_": "peft.LoraConfig",
                "r": 4,
                "lora_alpha": 8,
                "target_modules": ["q_proj", "v_proj"],
            }
        },
    },
    "prompt_template": "<audio>{audio}</audio> {instruction}: ",
}
"""The model :func:`save_tiny_export` writes: tiny WavLM + Llama with one LoRA adapter."""


def save_tiny_export(path: str | Path, seed: int = 0, scale: float = 0.2) -> Path:
    """An export folder (``speechllm-export``'s layout) of an untrained tiny model, in seconds.

    Its trainable parts (LoRA included) are moved ``scale`` standard deviations away from their
    init, so different recordings get different answers: what serving and inference tests need
    to tell answers apart, without a training run.
    """
    torch.manual_seed(seed)
    model = instantiate(TINY_EXPORT_NODE, _convert_="all")
    model.set_trainable(["downsampler", "layer_weights", "lora"])
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn_like(p))
    return model.save_pretrained(path, TINY_EXPORT_NODE)


def tiny_lora(r: int = 4, target_modules: list[str] | None = None) -> LoraConfig:
    """LoRA on the query and value projections of the tiny Llama or Qwen2 (``q_proj``,
    ``v_proj``); pass ``target_modules`` for GPT-2 (``c_attn``) or T5 (``q``, ``v``)."""
    return LoraConfig(
        r=r,
        lora_alpha=2 * r,
        lora_dropout=0.0,
        target_modules=target_modules or ["q_proj", "v_proj"],
    )
