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
from speechllm.models.distill import Scored, TextTeacher
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.encoder import AudioEncoder
from speechllm.models.groups import TrainableParts
from speechllm.models.head import ClassificationHead
from speechllm.models.layout import Row, RowLayout, Rows, shift, token_losses
from speechllm.models.llm import LLM
from speechllm.models.prompt import AUDIO, SUMMARY, PromptTemplate
from speechllm.models.summary_align import SummaryAligner


@dataclass
class SpeechLLMOutput:
    """Mean token loss plus per-item sums, so callers can average per task."""

    loss: torch.Tensor
    item_loss_sum: torch.Tensor
    item_tokens: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    """Each objective's own (unweighted, detached) loss when several are weighed."""


def _per_token(item_sum: torch.Tensor, token_ids: list[list[int]]) -> SpeechLLMOutput:
    """An alignment loss's per-item sums as an output whose loss is the mean per token."""
    item_tokens = torch.tensor([len(ids) for ids in token_ids], device=item_sum.device)
    return SpeechLLMOutput(item_sum.sum() / item_tokens.sum().clamp(min=1), item_sum, item_tokens)


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


class SpeechLLM(TrainableParts, nn.Module):
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
        ctc_compress: the LLM reads the audio along the CTC aligner's greedy path
            (:meth:`~speechllm.models.ctc.CTCAligner.compress`: blank frames dropped, repeats
            merged, each position a posterior-weighted mean of the LLM's token embeddings)
            instead of the frame embeddings; utterance embeddings are kept as they are. Needs
            ``ctc``, aligned first (``curriculum=ctc_align``); the CTC loss still reads the frames.
        ctc_compress_detach: with ``ctc_compress``, the path is read without gradients: only
            the CTC loss moves the frames and the aligner, so the LM loss cannot pull the
            alignment away from the words spoken (it still trains the utterance embeddings).
        summary_align: a :class:`~speechllm.models.summary_align.SummaryAligner`: enables the
            ``summary`` objective, each of its tasks' utterance embedding pointed at the LLM's
            embeddings of the item's answer, without a pass through the LLM.
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
        ctc_compress: bool = False,
        ctc_compress_detach: bool = False,
        summary_align: SummaryAligner | None = None,
    ) -> None:
        super().__init__()
        if ctc_compress and ctc is None:
            raise ValueError("ctc_compress reads the CTC aligner's path: set ctc= as well")
        if ctc_compress_detach and not ctc_compress:
            raise ValueError("ctc_compress_detach applies to ctc_compress: set it too")
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
        if summary_align is not None and len(summary_align.tasks) > downsampler.summary_tokens:
            raise ValueError(
                f"summary_align aligns {len(summary_align.tasks)} tasks but the downsampler "
                f"makes {downsampler.summary_tokens} utterance embeddings: one per task"
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
        self.ctc_compress = ctc_compress
        self.ctc_compress_detach = ctc_compress_detach
        self.summary_align = summary_align
        self.layout = RowLayout(llm, self.template, system_prompt)
        self.audio_gated = audio_gated
        self.teacher = TextTeacher(self.layout, teacher_answer_tokens)

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

    # ---------------------------------------------------------------- rows
    def encode_audio(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, ids: list[str] | None = None
    ) -> AudioEmbeddings:
        """Audio -> LLM-space embeddings ``(B, T', D)`` and their lengths ``(B,)``: the one
        encoder pass per item that scoring and generation then share.

        ``ids`` let a caching encoder skip utterances it has already encoded. With
        ``ctc_compress`` these are the CTC path's embeddings, what the LLM reads.
        """
        return self._read(self._frame_embeddings(audio, audio_lengths, ids))

    def _frame_embeddings(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, ids: list[str] | None
    ) -> AudioEmbeddings:
        """The downsampler's frame (and utterance) embeddings: what the CTC loss reads."""
        frames, mask = self.encoder(audio, audio_lengths, ids)
        embeds, mask = self.downsampler(frames, mask)
        return AudioEmbeddings(embeds, mask.sum(-1))

    def _read(self, frames: AudioEmbeddings) -> AudioEmbeddings:
        """What the LLM reads of ``frames``: themselves, or with ``ctc_compress`` the CTC path."""
        return self._compressed(frames) if self.ctc_compress else frames

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
        return [
            self.layout.item_row(
                instruction,
                self._slots(audio, position[i]) if i in position else None,
                None if targets is None else targets[i],
            )
            for i, instruction in enumerate(instructions)
        ]

    def _compressed(self, audio: AudioEmbeddings) -> AudioEmbeddings:
        """``audio``'s frame embeddings along the CTC path, its utterance embeddings after them
        (the layout :meth:`_slots` reads)."""
        k = self.downsampler.summary_tokens
        frames = audio.lengths - k
        vocabulary = self.llm.base_model.get_input_embeddings().weight
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.ctc_compress_detach):
            tokens, lengths = self.ctc.compress(audio.embeds, frames, vocabulary)
        if not k:
            return AudioEmbeddings(tokens, lengths)
        summary = torch.stack([audio.embeds[b, n : n + k] for b, n in enumerate(frames.tolist())])
        embeds = torch.cat([tokens, summary.new_zeros(len(tokens), k, tokens.shape[2])], dim=1)
        for b, n in enumerate(lengths.tolist()):
            embeds[b, n : n + k] = summary[b]
        return AudioEmbeddings(embeds, lengths + k)

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
        a transcript), ``summary`` (the summary aligner's, on speech items of its tasks) and
        ``kd`` (distillation from the text LLM: :class:`~speechllm.models.distill.TextTeacher`);
        with ``lm`` and ``kd`` at 0 the LLM never runs. ``transcripts`` hold each item's
        transcript (``""``: none; default: the targets). The per-item sums returned are the
        LM's, or without it the alignment losses'.
        """
        weights = {"lm": 1.0, **(objective or {})}
        n = len(targets)
        transcripts = list(targets) if transcripts is None else transcripts
        keys = audio_keys if audio_keys is not None else ids
        speech = [i for i, length in enumerate(audio_lengths.tolist()) if length > 0]
        frames = None
        if speech:
            frames = self._frame_embeddings(
                audio[speech],
                audio_lengths[speech],
                None if keys is None else [keys[i] for i in speech],
            )
        out, kd = None, None
        if weights["lm"] or weights.get("kd"):
            encoded = None if frames is None else self._read(frames)
            if weights.get("kd"):
                targets = self.teacher.answers(instructions, targets, transcripts)
            out, student = self._lm_loss(encoded, speech, instructions, targets, tasks)
            out.parts["lm"] = out.loss.detach()
            if weights.get("kd"):
                if student is None:
                    raise ValueError("the kd objective needs a decoder-only LLM")
                kd = self.teacher.kl(student, instructions, transcripts, speech)
                out.parts["kd"] = kd.detach()
            out.loss = weights["lm"] * out.loss + (
                weights.get("kd", 0.0) * kd if kd is not None else 0.0
            )
        aux = {}  # each alignment objective asked for: its output and the batch rows it scored
        if weights.get("ctc") and speech:
            aligned = [j for j, i in enumerate(speech) if transcripts[i]]
            if aligned:
                scored = [transcripts[speech[j]] for j in aligned]
                aux["ctc"] = (self.ctc_loss(frames.select(aligned), scored), aligned)
        if weights.get("summary") and speech:
            item_tasks = tasks or [""] * n
            slots = self._summary_slots([item_tasks[i] for i in speech])
            labelled = [j for j, slot in enumerate(slots) if slot is not None]
            if labelled:
                answers = [targets[speech[j]] for j in labelled]
                loss = self.summary_loss(frames, labelled, [slots[j] for j in labelled], answers)
                aux["summary"] = (loss, labelled)
        unused = not speech or any(weights.get(k) and k not in aux for k in ("ctc", "summary"))
        zero = self._zero() if unused else 0.0  # parts this batch did not use stay in the graph
        if out is None:  # per-item sums for the whole batch: zero for items nothing scored
            item_sum = audio.new_zeros(n, dtype=torch.float32)
            item_tokens = torch.zeros(n, dtype=torch.long)
            loss = audio.new_zeros(()) + zero
            for name, (part, rows) in aux.items():
                index = torch.tensor([speech[j] for j in rows], dtype=torch.long)
                item_sum = item_sum.index_add(0, index.to(item_sum.device), part.item_loss_sum)
                item_tokens[index] += part.item_tokens.cpu()
                loss = loss + weights[name] * part.loss
            out = SpeechLLMOutput(loss, item_sum, item_tokens)
        else:
            out.loss = out.loss + zero + sum(weights[k] * part.loss for k, (part, _) in aux.items())
        if len(aux) + bool(weights["lm"] or weights.get("kd")) > 1:
            out.parts.update({name: part.loss.detach() for name, (part, _) in aux.items()})
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
        return _per_token(self.ctc(audio.embeds, frames, target_ids, vocabulary), target_ids)

    @torch.no_grad()
    def ctc_transcripts(self, audio: torch.Tensor, audio_lengths: torch.Tensor) -> list[str]:
        """The CTC aligner's own greedy transcript of each item, without the LLM: with
        ``ctc_compress`` the LLM reads this path, so it bounds what the LLM can hear."""
        if self.ctc is None:
            raise ValueError("a CTC transcript needs a model built with a CTC aligner (ctc=)")
        encoded = self._frame_embeddings(audio, audio_lengths, None)
        frames = encoded.lengths - self.downsampler.summary_tokens
        vocabulary = self.llm.base_model.get_input_embeddings().weight
        return self.decode(self.ctc.greedy_ids(encoded.embeds, frames, vocabulary))

    def _summary_slots(self, tasks: list[str]) -> list[int | None]:
        """Each item's aligned utterance embedding (:class:`SummaryAligner`), or ``None``."""
        if self.summary_align is None:
            raise ValueError(
                "the summary objective needs a model built with a summary aligner (summary_align=)"
            )
        return [self.summary_align.slot(task) for task in tasks]

    def summary_loss(
        self, audio: AudioEmbeddings, rows: list[int], slots: list[int], answers: list[str]
    ) -> SpeechLLMOutput:
        """The summary aligner's loss of ``answers`` (their plain token ids) on utterance
        embedding ``slots[j]`` of ``audio``'s row ``rows[j]``; mean per answer token."""
        index = torch.tensor(rows, device=audio.lengths.device)
        first = audio.lengths[index] - self.downsampler.summary_tokens
        position = first + torch.tensor(slots).to(index)
        summary = audio.embeds[index, position]
        answer_ids = [self.llm.tokenize(answer) for answer in answers]
        vocabulary = self.llm.base_model.get_input_embeddings().weight
        return _per_token(self.summary_align(summary, answer_ids, vocabulary), answer_ids)

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
        position = {item: j for j, item in enumerate(speech)}
        scored = None
        if on_lm:
            lm_speech = [i for i in on_lm if i in speech_set]
            out, scored = self._score_items(
                encoded.select([position[i] for i in lm_speech]),
                [on_lm.index(i) for i in lm_speech],
                [instructions[i] for i in on_lm],
                [targets[i] for i in on_lm],
            )
            if scored is not None:  # an encoder-decoder scores without kept logits
                scored = scored._replace(items=on_lm)
            item_sum[on_lm], item_tokens[on_lm] = out.item_loss_sum, out.item_tokens
        head_tasks = [tasks[i] for i in on_head]
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
        return self.llm.until_eos([row[start:] for row in out.tolist()])

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
