"""TextClassifier: classification heads on a frozen decoder-only LLM, over its active adapters.

Gema et al. (2023) classify clinical notes with a head on LLaMA's pooled states, under a
downstream LoRA stacked on a clinical-domain LoRA. This is that model without audio::

    text ─► [bos] first max_tokens tokens [eos] ─► LLM (frozen, adapters active) ─► (B, T, D)
                                                   └─► per task: ClassificationHead (pool ─►
                                                       Linear ─► one logit per label)

One LLM pass serves every task's head. Training (``TextClassifierModule``), evaluation
(``speechllm-eval``), export and ``speechllm-infer --text`` all hold this one object;
``models/pretrained.py`` saves and loads it like a ``SpeechLLM`` (``config.json`` names it,
``adapters/`` holds its adapters, ``trainable.safetensors`` its heads).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from speechllm.models.groups import load_trainable
from speechllm.models.head import ClassificationHead
from speechllm.models.layout import RowLayout
from speechllm.models.llm import LLM


class TextClassifier(nn.Module):
    """One head per task on the pooled last-layer states of ``[bos] text [eos]``.

    Args:
        llm: the frozen LLM; ``adapters`` not yet attached are attached here (zero B: the
            outputs do not change), and adapters loaded through ``adapter_paths`` (step one's
            domain adapter) keep their weights.
        label_sets: each task's labels, the column order of its head (at least two).
        adapters: the adapters that run (e.g. ``[domain, task]``); none: the base LLM alone.
        pooling: ``mean`` over the text's positions, or ``last`` (see ``ClassificationHead``).
        max_tokens: the text's first tokens read (``None``: all of it); 510 and ``bos``/``eos``
            fill 512 positions.
    """

    def __init__(
        self,
        llm: LLM,
        label_sets: dict[str, list[str]],
        adapters: list[str] | None = None,
        pooling: str = "mean",
        max_tokens: int | None = 510,
    ) -> None:
        super().__init__()
        if llm.is_encoder_decoder:
            raise ValueError("text classification here needs a decoder-only (causal) LLM")
        if not label_sets:
            raise ValueError("give at least one task's label set")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens}")
        self.llm = llm
        self.layout = RowLayout(llm)
        self.max_tokens = max_tokens
        self.heads = nn.ModuleDict(
            {
                task: ClassificationHead(llm.hidden_size, labels, pooling)
                for task, labels in label_sets.items()
            }
        )
        self.adapters = list(adapters or [])
        for name in self.adapters:
            if name not in llm.attached_adapters:
                llm.attach_adapter(name)
        self.set_trainable([])

    @property
    def label_sets(self) -> dict[str, list[str]]:
        return {task: list(head.labels) for task, head in self.heads.items()}

    def set_trainable(self, adapters: Sequence[str]) -> None:
        """The heads and exactly ``adapters`` (among the running ones) train."""
        self.llm.set_adapters(active=self.adapters, trainable=list(adapters))
        self.heads.requires_grad_(True)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Heads and every attached adapter: what a checkpoint must hold."""
        keep = {
            id(p) for name in self.llm.attached_adapters for p in self.llm.adapter_parameters(name)
        }
        keep |= {id(p) for p in self.heads.parameters()}
        return {n: p.detach() for n, p in self.named_parameters() if id(p) in keep}

    def load_trainable_state_dict(
        self, state: dict[str, torch.Tensor], adapters: list[str]
    ) -> None:
        """Attach ``adapters`` if missing, then load every trainable weight from ``state``
        (any missing or extra weight is an error, as ``SpeechLLM`` has it)."""
        load_trainable(self, state, adapters)
        self.set_trainable([])

    def states(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-layer states ``(B, T, D)`` of ``texts`` and their mask."""
        device = self.llm.base_model.get_input_embeddings().weight.device
        rows = [self.layout.plain_row(text, max_tokens=self.max_tokens) for text in texts]
        batch = self.layout.batch(rows, device)
        return self.llm.hidden_states(batch.embeds, batch.mask), batch.mask

    def forward(self, texts: Sequence[str], tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        """Each task's logits ``(rows of that task, n_labels)``, rows in batch order. One LLM
        pass over the distinct texts serves every row (a note asked for two tasks is read
        once)."""
        unknown = sorted(set(tasks) - set(self.heads))
        if unknown:
            raise KeyError(f"no head for task(s) {unknown}; heads: {list(self.heads)}")
        distinct = {text: i for i, text in enumerate(dict.fromkeys(texts))}
        hidden, mask = self.states(list(distinct))
        out = {}
        for task in dict.fromkeys(tasks):
            rows = [distinct[text] for text, t in zip(texts, tasks, strict=True) if t == task]
            out[task] = self.heads[task](hidden[rows], mask[rows])
        return out

    def loss(
        self, texts: Sequence[str], tasks: Sequence[str], targets: Sequence[str]
    ) -> torch.Tensor:
        """Mean BCE over rows (each row's averaged over its task's labels); ``targets`` are
        ``"a, b"`` label strings."""
        losses = [
            self.heads[task].loss(logits, [targets[i] for i, t in enumerate(tasks) if t == task])
            for task, logits in self(texts, tasks).items()
        ]
        return torch.cat(losses).mean()

    @torch.no_grad()
    def classify(self, texts: Sequence[str], task: str) -> torch.Tensor:
        """Sigmoid label probabilities ``(B, n_labels)`` of ``task`` (columns: its labels)."""
        return self(texts, [task] * len(texts))[task].float().sigmoid()

    def check_tasks(self, tasks: Sequence[str]) -> None:
        """Refuse tasks without a head (``ValueError`` naming the heads)."""
        unknown = sorted(set(tasks) - set(self.heads))
        if unknown:
            raise ValueError(f"no head for task(s) {unknown}; heads: {sorted(self.heads)}")

    def label_probabilities(
        self, texts: Sequence[str], tasks: Sequence[str] | None = None
    ) -> list[dict[str, dict[str, float]]]:
        """Each text's ``task -> label -> probability`` for ``tasks`` (default: every head's),
        one LLM pass per task over all the texts, without autograd."""
        tasks = list(self.heads) if tasks is None else list(tasks)
        self.check_tasks(tasks)
        out: list[dict[str, dict[str, float]]] = [{} for _ in texts]
        with torch.inference_mode():
            for task in tasks:
                labels = self.heads[task].labels
                for row, probs in zip(out, self.classify(texts, task).tolist(), strict=True):
                    row[task] = dict(zip(labels, probs, strict=True))
        return out
