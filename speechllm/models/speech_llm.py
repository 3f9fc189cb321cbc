"""SpeechLLM: audio embeddings spliced into an instruction prompt for a frozen LLM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from speechllm.models.layout import IGNORE, Row, RowLayout, Rows, shift, token_losses
from speechllm.models.llm import LLM
from speechllm.models.prompt import AUDIO, SUMMARY, PromptTemplate


@dataclass
class SpeechLLMOutput:
    """Mean token loss plus per-item sums, so callers can average per task."""

    loss: torch.Tensor
    item_loss_sum: torch.Tensor
    item_tokens: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    """Each objective's own (unweighted, detached) loss when several are weighed."""


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
        audio_gated: the LoRA adapters act only on rows that carry audio (as Granite Speech
            gates its LoRA), so a text-only input meets the untouched LLM, row by row within
            a mixed batch.
        teacher_answer_tokens: longest answer the text LLM writes, under the ``kd`` objective,
            for an item with a transcript but no target.
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
        audio_gated: bool = False,
        teacher_answer_tokens: int = 64,
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
        self.layout = RowLayout(llm, self.template, system_prompt)
        self.audio_gated = audio_gated
        self.teacher_answer_tokens = teacher_answer_tokens

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
        model = pretrained.load_pretrained(
            path_or_id, revision, token, cache_dir, local_files_only, **overrides
        )
        if not isinstance(model, SpeechLLM):
            raise TypeError(
                f"{path_or_id} holds a {type(model).__name__}, not a speech LLM; "
                "speechllm.models.pretrained.load loads either"
            )
        return model

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

    def load_group_weights(self, state: dict[str, torch.Tensor], groups: Sequence[str]) -> None:
        """Load the module groups ``groups`` (``downsampler``, ``layer_weights``, ``heads``,
        ``ctc``) from ``state`` (keys as in ``state_dict()``): every weight of them, nothing
        else. Step two of two-step PEFT starts from step one's aligned downsampler and layer
        weights this way (``SpeechLLMModule(init_from=...)``); a shape that differs (another
        encoder or LLM) fails here, naming the weight.
        """
        parsed = TrainableGroups.parse(list(groups))
        if parsed.adapters or parsed.all_adapters:
            raise ValueError("adapters load by path (llm.adapter_paths), not as group weights")
        names = {id(m): name for name, m in self.named_modules()}
        wanted = {}
        for group in parsed.modules:
            module = self._group_modules.get(group)
            if module is None:
                raise ValueError(f"the model has no {group!r} to load")
            prefix = f"{names[id(module)]}."
            wanted |= {prefix + key: value for key, value in module.state_dict().items()}
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise KeyError(f"weights of {list(groups)} missing from the source: {missing[:5]}")
        for key, value in wanted.items():
            if state[key].shape != value.shape:
                raise ValueError(
                    f"{key}: the source's shape {tuple(state[key].shape)} is not this model's "
                    f"{tuple(value.shape)} (another encoder or LLM?)"
                )
        self.load_state_dict({key: state[key] for key in wanted}, strict=False)

    # ---------------------------------------------------------------- rows
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

    def prompt_length(self, instruction: str) -> int:
        """Text tokens of ``instruction``'s prompt (template pieces, ``bos``/``eos`` included);
        the audio adds its ``AudioEmbeddings.lengths``. For callers that cap or bill prompts."""
        return self.layout.prompt_length(instruction)

    def _slots(self, audio: AudioEmbeddings, b: int) -> dict[str, torch.Tensor]:
        """Item ``b``'s embeddings per template slot (``{summary}`` takes the last ones)."""
        n_audio = int(audio.lengths[b])
        if not self.template.has_summary:
            return {AUDIO: audio.embeds[b, :n_audio]}
        n_frames = n_audio - self.downsampler.summary_tokens
        return {AUDIO: audio.embeds[b, :n_frames], SUMMARY: audio.embeds[b, n_frames:n_audio]}

    def _rows(
        self,
        audio: AudioEmbeddings | None,
        instructions: list[str],
        targets: list[list[int]] | None,
        speech: list[int] | None = None,
    ) -> list[Row]:
        """Each item's row: items ``speech`` (default: all) take ``audio``'s rows in order, the
        others are text-only items (:meth:`RowLayout.text_row`)."""
        speech = list(range(len(instructions))) if speech is None else speech
        position = {item: j for j, item in enumerate(speech)}
        rows = []
        for i, instruction in enumerate(instructions):
            target = None if targets is None else targets[i]
            if i in position:
                rows.append(
                    self.layout.speech_row(instruction, self._slots(audio, position[i]), target)
                )
            else:
                given = self.layout.text_row(instruction).given
                rows.append(Row(given, [] if target is None else target))
        return rows

    def lay_out(
        self,
        audio: AudioEmbeddings,
        instructions: list[str],
        targets: list[list[int]] | None = None,
    ) -> Rows:
        """The LLM's input for a batch of speech items (``targets``: token ids, ``eos``
        included, as :meth:`RowLayout.target_ids` makes them): embeddings, mask, labels."""
        return self.layout.batch(self._rows(audio, instructions, targets))

    def _llm_rows(self, rows: list[Row], gate: torch.Tensor) -> Rows:
        """``rows`` batched, with the adapters gated to the rows that carry audio when the
        model is ``audio_gated`` (``gate``: 1 per speech row)."""
        if self.audio_gated:
            self.llm.gate_rows(gate)
        return self.layout.batch(rows)

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
        transcripts: list[str] | None = None,
        **_: Any,
    ) -> SpeechLLMOutput:
        """Teacher-forced loss on the targets; prompt, audio and padding are ignored.

        Items with ``audio_lengths`` 0 are text-only (:meth:`RowLayout.text_row`). Items whose
        task has a head count its BCE (mean over labels) as one token's loss. ``audio_keys``
        (else ``ids``) name the recordings for a caching encoder. ``objective`` weighs the
        losses: ``lm`` (this one, default 1), ``ctc`` (the CTC aligner's, on speech items with
        a transcript) and ``kd`` (distillation from the text LLM: :meth:`distill`); with
        ``lm`` and ``kd`` at 0 the LLM never runs. ``transcripts`` hold each item's transcript
        (``""``: none; default: the targets). The per-item sums returned are the LM's, or the
        CTC's when it is alone.
        """
        weights = {"lm": 1.0, **(objective or {})}
        n = len(targets)
        transcripts = list(targets) if transcripts is None else transcripts
        keys = audio_keys if audio_keys is not None else ids
        speech = [i for i, length in enumerate(audio_lengths.tolist()) if length > 0]
        encoded = None
        if speech:
            encoded = self.encode_audio(
                audio[speech],
                audio_lengths[speech],
                None if keys is None else [keys[i] for i in speech],
            )
        out, kd = None, None
        if weights["lm"] or weights.get("kd"):
            if weights.get("kd"):
                targets = self._teacher_answers(instructions, targets, transcripts, tasks)
            out, student = self._lm_loss(encoded, speech, instructions, targets, tasks)
            out.parts["lm"] = out.loss.detach()
            if weights.get("kd"):
                kd = self.distill(student, instructions, transcripts, speech)
                out.parts["kd"] = kd.detach()
            out.loss = weights["lm"] * out.loss + (
                weights.get("kd", 0.0) * kd if kd is not None else 0.0
            )
        aligned = [j for j, i in enumerate(speech) if transcripts[i]]
        if out is not None and (not speech or (weights.get("ctc") and not aligned)):
            out.loss = out.loss + self._zero()  # parts this batch did not use stay in the graph
        if not weights.get("ctc") or (out is not None and not aligned):
            return out
        if not aligned:  # nothing to align in this batch: a zero loss still in the graph
            zero = audio.new_zeros(()) + self._zero()
            return SpeechLLMOutput(zero, zero.new_zeros(n), torch.zeros(n, dtype=torch.long))
        ctc = self.ctc_loss(encoded.select(aligned), [transcripts[speech[j]] for j in aligned])
        if out is None:  # per-item sums for the whole batch: zero for items CTC did not score
            rows = torch.tensor([speech[j] for j in aligned], dtype=torch.long)
            item_sum = ctc.item_loss_sum.new_zeros(n).index_copy(0, rows, ctc.item_loss_sum)
            item_tokens = torch.zeros(n, dtype=torch.long)
            item_tokens[rows] = ctc.item_tokens.cpu()
            return SpeechLLMOutput(ctc.loss, item_sum, item_tokens)
        out.loss = out.loss + weights["ctc"] * ctc.loss
        out.parts["ctc"] = ctc.loss.detach()
        return out

    def _zero(self) -> torch.Tensor | float:
        """Zero times every trainable parameter: a text-only batch leaves the encoder side
        unused, and DDP's reducer expects each parameter in every step's graph (as
        :meth:`_idle_heads`)."""
        if not torch.is_grad_enabled():
            return 0.0
        trainable = [p.sum() for p in self.parameters() if p.requires_grad]
        return sum(trainable) * 0.0 if trainable else 0.0

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
        encoded: AudioEmbeddings | None,
        speech: list[int],
        instructions: list[str],
        targets: list[str],
        tasks: list[str] | None,
    ) -> tuple[SpeechLLMOutput, Scored | None]:
        """The LM loss of every item (a head's BCE for head tasks) and the scored logits of
        the items the LLM answered (for distillation)."""
        speech_set = set(speech)
        on_head = [
            i for i, task in enumerate(tasks or []) if task in self.heads and i in speech_set
        ]
        if not on_head:
            out, scored = self._score_items(encoded, speech, instructions, targets)
            out.loss = out.loss + self._idle_heads(set())
            return out, scored
        device = encoded.embeds.device
        item_sum = encoded.embeds.new_zeros(len(targets), dtype=torch.float32)
        item_tokens = torch.zeros(len(targets), dtype=torch.long, device=device)
        on_lm = [i for i in range(len(targets)) if i not in on_head]
        scored = None
        if on_lm:
            position = {item: j for j, item in enumerate(speech)}
            lm_speech = [i for i in on_lm if i in speech_set]
            out, scored = self._score_items(
                encoded.select([position[i] for i in lm_speech]),
                [on_lm.index(i) for i in lm_speech],
                [instructions[i] for i in on_lm],
                [targets[i] for i in on_lm],
            )
            scored = scored._replace(items=on_lm)
            item_sum[on_lm], item_tokens[on_lm] = out.item_loss_sum, out.item_tokens
        head_tasks = [tasks[i] for i in on_head]
        position = {item: j for j, item in enumerate(speech)}
        logits = self._head_logits(
            encoded.select([position[i] for i in on_head]),
            [instructions[i] for i in on_head],
            head_tasks,
        )
        for task, (rows, task_logits) in logits.items():
            items = [on_head[r] for r in rows]
            item_sum[items] = self.heads[task].loss(task_logits, [targets[i] for i in items])
            item_tokens[items] = 1
        loss = item_sum.sum() / item_tokens.sum() + self._idle_heads(set(logits))
        return SpeechLLMOutput(loss, item_sum, item_tokens), scored

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
        rows = self._llm_rows(
            self._rows(audio, instructions, None), audio.lengths.new_ones(len(tasks))
        )
        hidden = self.llm.hidden_states(rows.embeds, rows.mask)
        out = {}
        for task in dict.fromkeys(tasks):
            picked = [i for i, t in enumerate(tasks) if t == task]
            out[task] = (picked, self.heads[task](hidden[picked], rows.mask[picked]))
        return out

    def score(
        self, audio: AudioEmbeddings, instructions: list[str], targets: list[str]
    ) -> SpeechLLMOutput:
        """The loss of ``targets`` given already encoded audio (from :meth:`encode_audio`).

        Label scoring encodes each item once and repeats its rows across labels
        (:meth:`AudioEmbeddings.select`).
        """
        return self._score_items(audio, list(range(len(targets))), instructions, targets)[0]

    def _score_items(
        self,
        audio: AudioEmbeddings | None,
        speech: list[int],
        instructions: list[str],
        targets: list[str],
    ) -> tuple[SpeechLLMOutput, Scored | None]:
        """Teacher-forced loss of every item (``speech`` ones with ``audio``, the others
        text-only) and, decoder-only, the logits that scored each target."""
        target_ids = [self.layout.target_ids(t) for t in targets]
        gate = torch.zeros(len(targets))
        gate[speech] = 1.0
        rows = self._llm_rows(self._rows(audio, instructions, target_ids, speech), gate)
        if self.llm.is_encoder_decoder:
            labels = self.layout.decoder_labels(target_ids, rows.mask.device)
            logits = self.llm(rows.embeds, rows.mask, labels=labels)
            scored = None
        else:
            keep = max(len(t) for t in target_ids) + 1
            logits, labels = shift(
                self.llm(rows.embeds, rows.mask, logits_to_keep=keep), rows, keep
            )
            scored = Scored(logits, labels, list(range(len(targets))))
        item_sum, item_tokens = token_losses(logits, labels)
        loss = item_sum.sum() / item_tokens.sum()
        return SpeechLLMOutput(loss, item_sum, item_tokens), scored

    # ---------------------------------------------------------------- distillation
    def _teacher_rows(
        self,
        instructions: list[str],
        transcripts: list[str],
        speech: list[int],
        targets: list[list[int]] | None,
    ) -> list[Row]:
        """The text LLM's view of each item: speech items with their transcript's token ids in
        place of the audio (and nothing for ``{summary}``), text items as they are."""
        speech_set = set(speech)
        rows = []
        for i, instruction in enumerate(instructions):
            target = None if targets is None else targets[i]
            if i in speech_set:
                slots = {AUDIO: self.llm.tokenize(transcripts[i])}
                rows.append(self.layout.speech_row(instruction, slots, target))
            else:
                given = self.layout.text_row(instruction).given
                rows.append(Row(given, [] if target is None else target))
        return rows

    @torch.no_grad()
    def _teacher_answers(
        self,
        instructions: list[str],
        targets: list[str],
        transcripts: list[str],
        tasks: list[str] | None,
    ) -> list[str]:
        """``targets`` with each empty one (instruction data without an answer) replaced by the
        text LLM's own greedy answer to the item's instruction and transcript, as Ultravox's
        continuation data is made; items without a transcript keep theirs."""
        empty = [i for i, t in enumerate(targets) if not t and transcripts[i]]
        if not empty:
            return targets
        rows = self._teacher_rows(
            [instructions[i] for i in empty],
            [transcripts[i] for i in empty],
            list(range(len(empty))),
            None,
        )
        batch = self.layout.batch(rows)
        with self.llm.adapters_off():
            out = self.llm.generate(
                batch.embeds, batch.mask, max_new_tokens=self.teacher_answer_tokens, do_sample=False
            )
        answers = self.decode(_cut_at(out.tolist(), self.llm.eos_token_id))
        filled = list(targets)
        for i, answer in zip(empty, answers, strict=True):
            filled[i] = answer.strip()
        return filled

    def distill(
        self,
        student: Scored | None,
        instructions: list[str],
        transcripts: list[str],
        speech: list[int],
    ) -> torch.Tensor:
        """KL(teacher || student) per answer token, mean over the tokens of items with a
        transcript (and text-only items): the teacher is the frozen LLM, adapters off, reading
        the same prompt with the transcript in place of the audio, scored on the same target
        tokens, in no-grad and in the LLM's own dtype (Ultravox's distillation loss).

        Computed in the same batch: the student's logits are the ones that scored its targets.
        """
        if student is None:
            raise ValueError("the kd objective needs a decoder-only LLM")
        speech_set = set(speech)
        items = [
            (j, i) for j, i in enumerate(student.items) if i not in speech_set or transcripts[i]
        ]
        if not items:
            return student.logits.sum() * 0.0
        picked = [j for j, _ in items]
        labels = student.labels[picked]
        width = labels.shape[1] + 1
        targets = [[t for t in row.tolist() if t != IGNORE] for row in labels]
        rows = self._teacher_rows(
            [instructions[i] for _, i in items],
            [transcripts[i] for _, i in items],
            [k for k, (_, i) in enumerate(items) if i in speech_set],
            targets,
        )
        with torch.no_grad(), self.llm.adapters_off():
            teacher_rows = self.layout.batch(rows)
            teacher, _ = shift(
                self.llm(teacher_rows.embeds, teacher_rows.mask, logits_to_keep=width),
                teacher_rows,
                width,
            )
        return kl_per_token(teacher, student.logits[picked], labels)

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
        audio: AudioEmbeddings | None,
        instructions: list[str],
        max_new_tokens: int = 64,
        **generate_kwargs: Any,
    ) -> list[list[int]]:
        """The answers' token ids per item given already encoded audio (``None``: text-only
        instructions), cut before ``eos`` (no decoder start token): for callers that cut,
        constrain or score tokens (``generate_kwargs`` go to Hugging Face ``generate``, e.g.
        ``num_beams`` or ``prefix_allowed_tokens_fn``)."""
        speech = list(range(len(instructions))) if audio is not None else []
        gate = torch.zeros(len(instructions))
        gate[speech] = 1.0
        rows = self._llm_rows(self._rows(audio, instructions, None, speech), gate)
        generate_kwargs.setdefault("do_sample", False)
        out = self.llm.generate(
            rows.embeds, rows.mask, max_new_tokens=max_new_tokens, **generate_kwargs
        )
        start = int(self.llm.is_encoder_decoder)
        return _cut_at([row[start:] for row in out.tolist()], self.llm.eos_token_id)

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


class Scored(NamedTuple):
    """The logits that scored a batch's targets, for distillation: ``logits`` ``(N, K, V)``
    predict ``labels`` ``(N, K)`` (:data:`IGNORE` where nothing is scored); row ``j`` is item
    ``items[j]`` of the batch."""

    logits: torch.Tensor
    labels: torch.Tensor
    items: list[int]


def kl_per_token(
    teacher: torch.Tensor, student: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean over scored positions of KL(teacher || student), in float32 (``teacher`` may be
    half precision: its softmax is taken after the cast)."""
    scored = labels != IGNORE
    log_t = teacher.float()[scored].log_softmax(-1)
    log_s = student.float()[scored].log_softmax(-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    return kl.sum() / scored.sum().clamp(min=1)


def _cut_at(rows: list[list[int]], eos: int) -> list[list[int]]:
    """Each row up to (not including) its first ``eos``."""
    return [row[: row.index(eos)] if eos in row else row for row in rows]
