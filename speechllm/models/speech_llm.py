"""SpeechLLM: audio embeddings spliced into an instruction prompt for a frozen LLM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from speechllm.models import pretrained
from speechllm.models.card import CardInfo
from speechllm.models.ctc import CTCAligner
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.encoder import AudioEncoder
from speechllm.models.groups import TRAINABLE_GROUPS, TrainableGroups
from speechllm.models.head import ClassificationHead
from speechllm.models.llm import LLM
from speechllm.models.prompt import AUDIO, SUMMARY, PromptTemplate

IGNORE = -100


@dataclass
class SpeechLLMOutput:
    """Mean token loss plus per-item sums, so callers can average per task."""

    loss: torch.Tensor
    item_loss_sum: torch.Tensor
    item_tokens: torch.Tensor


class AudioEmbeddings(NamedTuple):
    """A batch's audio in the LLM's embedding space, from :meth:`SpeechLLM.encode_audio`.

    Encoding (frozen encoder, layer mix, downsampler) is the costly half of a speech LLM's
    forward on short prompts; evaluation encodes each item once and hands these to
    :meth:`SpeechLLM.score`, :meth:`SpeechLLM.generate_ids` and label scoring, which repeat
    rows with :meth:`select` instead of re-encoding per label or per call.
    """

    embeds: torch.Tensor
    """``(B, T', D)``, zero past each item's length."""
    lengths: torch.Tensor
    """``(B,)`` valid embeddings per item."""

    def select(self, indices: Sequence[int]) -> AudioEmbeddings:
        """The rows ``indices`` (repeats allowed: one row per label to score)."""
        rows = list(indices)
        return AudioEmbeddings(self.embeds[rows], self.lengths[rows])


class SpeechLLM(nn.Module):
    """Encoder -> layer mix -> downsampler -> splice into the prompt -> LLM.

    Each item's sequence is laid out as below and left-padded, for training and generation
    alike, so a decoder-only model's targets always end the row (only their logits are
    computed) and batched generation sees the same positions as a lone example::

        [pad..][bos][ prompt before {audio} ][ audio embeddings ][ prompt after ][ target ][eos]
                                                                                 └ labels ┘

    A downsampler's utterance embeddings (``summary_tokens``) follow the frame embeddings,
    unless the template places them with ``{summary}``: at the end of the prompt, the position
    that predicts the answer's first token reads them directly, without first having to learn
    to attend back into the audio.

    An encoder-decoder LLM gets the prompt (with ``eos``) as encoder input and the target as
    decoder labels. Items of a task with a classification head skip the target: the head
    reads the LLM's pooled states of the prompt and audio instead.

    Args:
        encoder: the frozen audio encoder (with its learnable layer weights).
        downsampler: a ``ConvDownsampler`` or a factory taking ``input_size``/``output_size``
            (the sizes come from the encoder and LLM, so they cannot disagree). One built here
            with no ``output_scale`` starts at the LLM's token-embedding RMS.
        llm: the frozen LLM with its named adapters.
        prompt_template: where the audio and the instruction go, with ``{audio}`` and
            ``{instruction}`` placeholders and an optional ``{summary}``; chat markup for
            instruct models goes here too.
        heads: classification heads by task name, or factories taking ``hidden_size`` (Hydra
            ``_partial_``); those tasks train with BCE on the head instead of generating.
        chat_template: ``prompt_template`` is the user turn, wrapped in the LLM tokenizer's
            own chat template (system turn, generation prompt), as instruct models expect.
        system_prompt: the system turn's text with ``chat_template`` (default: the chat
            template's own default, if it has one).
        ctc: a :class:`~speechllm.models.ctc.CTCAligner` or a factory taking ``hidden_size``:
            enables the ``ctc`` objective (trainable group ``ctc``), alignment against the
            LLM's vocabulary without a pass through the LLM.
    """

    def __init__(
        self,
        encoder: AudioEncoder,
        downsampler: ConvDownsampler | Callable[..., ConvDownsampler],
        llm: LLM,
        prompt_template: str = "<audio>{audio}</audio> {instruction}: ",
        heads: dict[str, ClassificationHead | Callable[..., ClassificationHead]] | None = None,
        chat_template: bool = False,
        system_prompt: str | None = None,
        ctc: CTCAligner | Callable[..., CTCAligner] | None = None,
    ) -> None:
        super().__init__()
        self.template = (
            PromptTemplate.from_chat(llm.tokenizer, prompt_template, system_prompt)
            if chat_template
            else PromptTemplate(prompt_template)
        )
        if not isinstance(downsampler, nn.Module):
            downsampler = downsampler(input_size=encoder.hidden_size, output_size=llm.hidden_size)
            if downsampler.output_scale is None:
                downsampler.scale_output(llm.embedding_rms)
        in_size, out_size = downsampler.convs[0].in_channels, downsampler.convs[-1].out_channels
        if (in_size, out_size) != (encoder.hidden_size, llm.hidden_size):
            raise ValueError(
                f"downsampler maps {in_size} -> {out_size} but the encoder gives "
                f"{encoder.hidden_size} and the LLM embeds {llm.hidden_size}"
            )
        if self.template.has_summary and not downsampler.summary_tokens:
            raise ValueError(
                "prompt_template places {summary} but the downsampler makes no utterance "
                "embeddings (set downsampler.summary_tokens)"
            )
        self.encoder = encoder
        self.downsampler = downsampler
        self.llm = llm
        self.heads = nn.ModuleDict(
            {
                task: head if isinstance(head, nn.Module) else head(hidden_size=llm.hidden_size)
                for task, head in (heads or {}).items()
            }
        )
        if ctc is not None and not isinstance(ctc, nn.Module):
            ctc = ctc(hidden_size=llm.hidden_size)
        self.ctc = ctc

    # ---------------------------------------------------------------- saving
    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        **overrides: Any,
    ) -> SpeechLLM:
        """Load an export (``speechllm-export``) from a folder or a Hub repo id (``org/name``,
        at ``revision``); frozen bases come from their own ids."""
        return pretrained.load_pretrained(
            path_or_id, revision, token, cache_dir, local_files_only, **overrides
        )

    def save_pretrained(
        self,
        path: str | Path,
        config: dict[str, Any],
        merge_lora: bool = False,
        card: CardInfo | None = None,
    ) -> Path:
        """Write an export folder; ``config`` is the Hydra node this model was built from."""
        return pretrained.save_pretrained(self, path, config, merge_lora, card)

    def push_to_hub(
        self,
        repo_id: str,
        config: dict[str, Any],
        merge_lora: bool = False,
        card: CardInfo | None = None,
        token: str | bool | None = None,
        private: bool | None = None,
    ) -> str:
        """Export (as :meth:`save_pretrained`) and upload to ``repo_id``; the commit's URL."""
        return pretrained.push_to_hub(self, repo_id, config, merge_lora, card, token, private)

    # ---------------------------------------------------------------- trainable groups
    def group_parameters(self, group: str) -> list[nn.Parameter]:
        """Parameters of ``downsampler``, ``layer_weights``, ``heads``, ``ctc`` or
        ``lora[.<name>]`` (none for ``ctc`` on a model built without it)."""
        parsed = TrainableGroups.parse([group])
        if parsed.modules:
            module = self._group_modules.get(group)
            return list(module.parameters()) if module is not None else []
        names = parsed.adapter_names(self.llm.attached_adapters)
        return [p for name in names for p in self.llm.adapter_parameters(name)]

    @property
    def _group_modules(self) -> dict[str, nn.Module]:
        return {
            "downsampler": self.downsampler,
            "layer_weights": self.encoder.layer_weights,
            "heads": self.heads,
            **({"ctc": self.ctc} if self.ctc is not None else {}),
        }

    def set_trainable(self, groups: list[str], active_adapters: list[str] | None = None) -> None:
        """Make exactly ``groups`` trainable, attaching any named adapter not yet attached.

        ``lora`` means every declared adapter. All attached adapters run unless
        ``active_adapters`` says otherwise.
        """
        parsed = TrainableGroups.parse(groups)
        if "ctc" in parsed.modules and self.ctc is None:
            raise ValueError("group 'ctc' is trainable but the model has no CTC aligner (ctc=)")
        wanted_adapters = parsed.adapter_names(self.llm.adapter_configs)
        if parsed.all_adapters and not wanted_adapters:
            raise ValueError("group 'lora' is trainable but the LLM declares no adapters")
        for name in [*wanted_adapters, *(active_adapters or [])]:
            if name not in self.llm.attached_adapters:
                self.llm.attach_adapter(name)
        active = self.llm.attached_adapters if active_adapters is None else active_adapters
        self.llm.set_adapters(active=list(active), trainable=wanted_adapters)
        for group, module in self._group_modules.items():
            module.requires_grad_(group in parsed.modules)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Downsampler, layer weights, heads and every adapter: what a checkpoint must hold."""
        keep = {id(p) for g in TRAINABLE_GROUPS for p in self.group_parameters(g)}
        return {n: p.detach() for n, p in self.named_parameters() if id(p) in keep}

    def load_trainable_state_dict(
        self, state: dict[str, torch.Tensor], adapters: list[str]
    ) -> None:
        """Attach ``adapters`` if missing, then load every trainable weight from ``state``.

        Frozen bases are not in ``state``; any trainable weight missing from it is an error,
        so a checkpoint from another architecture cannot half-load silently.
        """
        for name in adapters:
            if name not in self.llm.attached_adapters:
                self.llm.attach_adapter(name)
        expected = set(self.trainable_state_dict())
        missing, extra = expected - set(state), set(state) - expected
        if missing or extra:
            raise KeyError(
                f"trainable weights do not match: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(extra)[:5]}"
            )
        self.load_state_dict(state, strict=False)

    # ---------------------------------------------------------------- splicing
    def encode_audio(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, ids: list[str] | None = None
    ) -> AudioEmbeddings:
        """Audio -> LLM-space embeddings ``(B, T', D)`` and their lengths ``(B,)``: the one
        encoder pass per item that scoring and generation then share.

        ``ids`` let a caching encoder skip utterances it has already encoded.
        """
        frames, mask = self.encoder(audio, audio_lengths, ids)
        embeds, mask = self.downsampler(frames, mask)
        return AudioEmbeddings(embeds, mask.sum(-1))

    def _prompt_ids(self, instruction: str) -> list[list[int]]:
        """Token ids of the template's text around its slots: one list more than slots."""
        ids = [self.llm.tokenize(text) for text in self.template.pieces(instruction)]
        if self.llm.is_encoder_decoder:
            ids[-1] = ids[-1] + [self.llm.eos_token_id]
        elif self.llm.tokenizer.bos_token_id is not None and not self.template.chat:
            ids[0] = [self.llm.tokenizer.bos_token_id] + ids[0]
        return ids

    def prompt_length(self, instruction: str) -> int:
        """Text tokens of ``instruction``'s prompt (template pieces, ``bos``/``eos`` included);
        the audio adds its ``AudioEmbeddings.lengths``. For callers that cap or bill prompts."""
        return sum(len(ids) for ids in self._prompt_ids(instruction))

    def _slot_embeds(self, audio_embeds: torch.Tensor, n_audio: int) -> dict[str, torch.Tensor]:
        """One item's embeddings per template slot (``{summary}`` takes the last ones)."""
        if not self.template.has_summary:
            return {AUDIO: audio_embeds[:n_audio]}
        n_frames = n_audio - self.downsampler.summary_tokens
        return {AUDIO: audio_embeds[:n_frames], SUMMARY: audio_embeds[n_frames:n_audio]}

    def _splice(
        self,
        audio_embeds: torch.Tensor,
        audio_lengths: torch.Tensor,
        instructions: list[str],
        target_ids: list[list[int]] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Left-padded ``inputs_embeds``, ``attention_mask`` and (decoder-only) ``labels``.

        The rows are built in the frozen LLM's own dtype (its token embeddings' dtype, e.g.
        bf16 for a hub Llama/Qwen): the audio embeddings are cast at this boundary, so the
        LLM never sees a dtype it was not loaded in, with or without autocast.
        """
        device = audio_embeds.device
        with_target = target_ids is not None and not self.llm.is_encoder_decoder
        tails = target_ids if with_target else [[] for _ in instructions]
        text_ids = []
        for instruction, tail in zip(instructions, tails, strict=True):
            pieces = self._prompt_ids(instruction)
            text_ids.extend([*pieces[:-1], pieces[-1] + tail])
        flat = torch.tensor([i for ids in text_ids for i in ids], dtype=torch.long, device=device)
        text_embeds = self.llm.embed(flat).split([len(ids) for ids in text_ids])
        audio_embeds = audio_embeds.to(text_embeds[0].dtype)
        slot_names = self.template.slots
        n_text = len(slot_names) + 1
        rows, label_rows = [], []
        for b, n_audio in enumerate(audio_lengths.tolist()):
            texts = text_embeds[b * n_text : (b + 1) * n_text]
            slots = self._slot_embeds(audio_embeds[b], n_audio)
            parts = [texts[0]]
            for slot, text in zip(slot_names, texts[1:], strict=True):
                parts += [slots[slot], text]
            rows.append(torch.cat(parts))
            if with_target:
                n_target = len(tails[b])
                label_rows.append([IGNORE] * (rows[-1].shape[0] - n_target) + list(tails[b]))
        width = max(r.shape[0] for r in rows)
        embeds = audio_embeds.new_zeros(len(rows), width, audio_embeds.shape[-1])
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long, device=device)
        for b, row in enumerate(rows):
            embeds[b, width - row.shape[0] :] = row
            mask[b, width - row.shape[0] :] = 1
            if with_target:
                labels[b, width - row.shape[0] :] = torch.tensor(label_rows[b], device=device)
        return embeds, mask, labels if with_target else None

    def _target_ids(self, targets: list[str]) -> list[list[int]]:
        return [self.llm.tokenize(t) + [self.llm.eos_token_id] for t in targets]

    # ---------------------------------------------------------------- training
    def forward(
        self,
        audio: torch.Tensor,
        audio_lengths: torch.Tensor,
        instructions: list[str],
        targets: list[str],
        ids: list[str] | None = None,
        tasks: list[str] | None = None,
        audio_keys: list[str] | None = None,
        objective: dict[str, float] | None = None,
        transcripts: list[bool] | None = None,
        **_: Any,
    ) -> SpeechLLMOutput:
        """Teacher-forced loss on the targets; prompt, audio and padding are ignored.

        Items whose task has a head count its BCE (mean over labels) as one token's loss.
        ``audio_keys`` (else ``ids``) name the recordings for a caching encoder.
        ``objective`` weighs the losses: ``lm`` (this one, default 1) and ``ctc`` (the CTC
        aligner's, on the items ``transcripts`` marks, default all); with ``lm`` at 0 the LLM
        never runs. The per-item sums returned are the LM's, or the CTC's when it is alone.
        """
        weights = {"lm": 1.0, **(objective or {})}
        keys = audio_keys if audio_keys is not None else ids
        encoded = self.encode_audio(audio, audio_lengths, keys)
        out = self._lm_loss(encoded, instructions, targets, tasks) if weights["lm"] else None
        rows = [i for i, t in enumerate(transcripts or [True] * len(targets)) if t]
        if not weights.get("ctc") or (out is not None and not rows):
            return out
        if not rows:  # nothing to align in this batch: a zero loss still in the graph
            zero = encoded.embeds.sum() * 0.0
            return SpeechLLMOutput(zero, zero.new_zeros(len(targets)), torch.zeros(len(targets)))
        ctc = self.ctc_loss(encoded.select(rows), [targets[i] for i in rows])
        if out is None:  # per-item sums for the whole batch: zero for items CTC did not score
            item_sum = ctc.item_loss_sum.new_zeros(len(targets)).index_copy(
                0, torch.tensor(rows, dtype=torch.long), ctc.item_loss_sum
            )
            item_tokens = torch.zeros(len(targets), dtype=torch.long)
            item_tokens[rows] = ctc.item_tokens
            return SpeechLLMOutput(ctc.loss, item_sum, item_tokens)
        out.loss = weights["lm"] * out.loss + weights["ctc"] * ctc.loss
        return out

    def ctc_loss(self, audio: AudioEmbeddings, targets: list[str]) -> SpeechLLMOutput:
        """The CTC aligner's loss of ``targets`` (their plain token ids) on the audio's frame
        embeddings (utterance embeddings excluded); mean per target token."""
        if self.ctc is None:
            raise ValueError("the ctc objective needs a model built with a CTC aligner (ctc=)")
        target_ids = [self.llm.tokenize(t) for t in targets]
        frames = audio.lengths - self.downsampler.summary_tokens
        vocabulary = self.llm.base_model.get_input_embeddings().weight
        item_sum = self.ctc(audio.embeds, frames, target_ids, vocabulary)
        item_tokens = torch.tensor([len(t) for t in target_ids], device=item_sum.device)
        loss = item_sum.sum() / item_tokens.sum().clamp(min=1)
        return SpeechLLMOutput(loss, item_sum, item_tokens)

    def _lm_loss(
        self,
        encoded: AudioEmbeddings,
        instructions: list[str],
        targets: list[str],
        tasks: list[str] | None,
    ) -> SpeechLLMOutput:
        on_head = [i for i, task in enumerate(tasks or []) if task in self.heads]
        if not on_head:
            out = self.score(encoded, instructions, targets)
            out.loss = out.loss + self._idle_heads(set())
            return out
        item_sum = encoded.embeds.new_zeros(len(targets), dtype=torch.float32)
        item_tokens = torch.zeros(len(targets), dtype=torch.long, device=item_sum.device)
        on_lm = [i for i in range(len(targets)) if i not in on_head]
        if on_lm:
            out = self.score(
                encoded.select(on_lm),
                [instructions[i] for i in on_lm],
                [targets[i] for i in on_lm],
            )
            item_sum[on_lm], item_tokens[on_lm] = out.item_loss_sum, out.item_tokens
        head_tasks = [tasks[i] for i in on_head]
        logits = self._head_logits(
            encoded.select(on_head), [instructions[i] for i in on_head], head_tasks
        )
        for task, (rows, task_logits) in logits.items():
            items = [on_head[r] for r in rows]
            item_sum[items] = self.heads[task].loss(task_logits, [targets[i] for i in items])
            item_tokens[items] = 1
        loss = item_sum.sum() / item_tokens.sum() + self._idle_heads(set(logits))
        return SpeechLLMOutput(loss, item_sum, item_tokens)

    def _idle_heads(self, ran: set[str]) -> torch.Tensor | float:
        """Zero times each trainable head a batch did not use: its true gradient, zero.

        Every trainable parameter is then in every step's graph, so DDP's reducer needs no
        ``find_unused_parameters`` for a task mixture with heads (docs/scale.md), and one
        process sees exactly the gradients DDP does.
        """
        if not torch.is_grad_enabled():
            return 0.0
        idle = [
            p
            for task, head in self.heads.items()
            if task not in ran
            for p in head.parameters()
            if p.requires_grad
        ]
        return sum(p.sum() for p in idle) * 0.0 if idle else 0.0

    def _head_logits(
        self, audio: AudioEmbeddings, instructions: list[str], tasks: list[str]
    ) -> dict[str, tuple[list[int], torch.Tensor]]:
        """One LLM pass over the prompts, then each task's head on its rows: ``task -> (rows,
        logits)``."""
        embeds, mask, _ = self._splice(*audio, instructions, None)
        hidden = self.llm.hidden_states(embeds, mask)
        out = {}
        for task in dict.fromkeys(tasks):
            rows = [i for i, t in enumerate(tasks) if t == task]
            out[task] = (rows, self.heads[task](hidden[rows], mask[rows]))
        return out

    def score(
        self, audio: AudioEmbeddings, instructions: list[str], targets: list[str]
    ) -> SpeechLLMOutput:
        """The loss of ``targets`` given already encoded audio (from :meth:`encode_audio`).

        Label scoring encodes each item once and repeats its rows across labels
        (:meth:`AudioEmbeddings.select`).
        """
        target_ids = self._target_ids(targets)
        embeds, mask, labels = self._splice(*audio, instructions, target_ids)
        if self.llm.is_encoder_decoder:
            width = max(len(t) for t in target_ids)
            labels = torch.full((len(targets), width), IGNORE, dtype=torch.long, device=mask.device)
            for b, ids in enumerate(target_ids):
                labels[b, : len(ids)] = torch.tensor(ids, device=mask.device)
            logits = self.llm(embeds, mask, labels=labels)
        else:
            keep = max(len(t) for t in target_ids) + 1
            logits = self.llm(embeds, mask, logits_to_keep=keep)[:, -keep:-1]
            labels = labels[:, -keep + 1 :]
        token_loss = nn.functional.cross_entropy(
            logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
        )
        counted = labels != IGNORE
        item_sum = (token_loss * counted).sum(-1)
        item_tokens = counted.sum(-1)
        return SpeechLLMOutput(item_sum.sum() / item_tokens.sum(), item_sum, item_tokens)

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def classify(self, audio: AudioEmbeddings, instructions: list[str], task: str) -> torch.Tensor:
        """Sigmoid label probabilities ``(B, n_labels)`` from ``task``'s head (for AUROC), given
        the batch's encoded audio (:meth:`encode_audio`)."""
        if task not in self.heads:
            raise KeyError(f"task {task!r} has no classification head; heads: {list(self.heads)}")
        tasks = [task] * len(instructions)
        _, logits = self._head_logits(audio, instructions, tasks)[task]
        return logits.float().sigmoid()

    @torch.no_grad()
    def generate_ids(
        self,
        audio: AudioEmbeddings,
        instructions: list[str],
        max_new_tokens: int = 64,
        **generate_kwargs: Any,
    ) -> list[list[int]]:
        """The answers' token ids per item given already encoded audio, cut before ``eos`` (no
        decoder start token): for callers that cut, constrain or score tokens
        (``generate_kwargs`` go to Hugging Face ``generate``, e.g. ``num_beams`` or
        ``prefix_allowed_tokens_fn``)."""
        embeds, mask, _ = self._splice(*audio, instructions, None)
        generate_kwargs.setdefault("do_sample", False)
        out = self.llm.generate(embeds, mask, max_new_tokens=max_new_tokens, **generate_kwargs)
        eos, start = self.llm.eos_token_id, int(self.llm.is_encoder_decoder)
        rows = [row[start:] for row in out.tolist()]
        return [row[: row.index(eos)] if eos in row else row for row in rows]

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Token ids back to text (special tokens dropped)."""
        return self.llm.tokenizer.batch_decode(ids, skip_special_tokens=True)

    @torch.no_grad()
    def generate(
        self,
        audio: torch.Tensor,
        audio_lengths: torch.Tensor,
        instructions: list[str],
        max_new_tokens: int = 64,
        **generate_kwargs: Any,
    ) -> list[str]:
        """Greedy (or any ``generate`` setting) answers for a batch, one string per item.

        One recording from a file or a waveform at any rate: ``speechllm.inference.answer``.
        A caller that also scores the batch encodes it once (:meth:`encode_audio`) and calls
        :meth:`generate_ids` and :meth:`score` on the embeddings.
        """
        encoded = self.encode_audio(audio, audio_lengths)
        return self.decode(
            self.generate_ids(encoded, instructions, max_new_tokens, **generate_kwargs)
        )
