"""Decoding for evaluation: heads, label-constrained decoding, free generation, label scores.

Each item of a batch takes the route its task names (``Task.route``), and each route runs
batched::

    batch ─┬─ the model has a head ──► head: label probabilities (label_scores); the answer is
           │  for the task              the top label, or every label over the threshold
           ├─ "label" task with a ──► constrained: a token trie of the labels (+ eos)
           │  label set                 restricts generation
           └─ otherwise ────────────► free: greedy / beam search, length bounded by the audio

    every other item whose task has labels ─► each label scored (label_scores, for AUROC)

With ``joint`` on, a model answers ``"ASR: <transcript> | <task>: <answer>"``; a trie cannot
constrain an answer that follows a free transcript, so the label is chosen by scoring every
label after the generated transcript (an exact search over the label set) instead.

:func:`decode_batch` runs the audio encoder once per item (``SpeechLLM.encode_audio``); every
route above reuses those embeddings, so a labelled item that is generated, then scored against
``L`` labels, costs one encoder pass, not ``L + 1``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from speechllm.data.joint import joint_target, parse_joint
from speechllm.evaluation.metrics import NO_LABEL
from speechllm.models.speech_llm import AudioEmbeddings, SpeechLLM
from speechllm.tasks import get_task

LENGTH_SLACK = 10
"""Tokens allowed on top of the audio-length bound: short clips still get a whole answer."""

Batch = dict[str, Any]


@dataclass
class DecodingConfig:
    """How evaluation decodes; the defaults are deterministic (no sampling)."""

    num_beams: int = 1
    """Beam width; 1 is greedy search."""
    max_new_tokens: int = 128
    """Hard cap on generated tokens per item."""
    repetition_penalty: float = 1.0
    """Hugging Face's repetition penalty (1.0 = off); > 1 discourages loops."""
    max_tokens_per_audio_second: float | None = 30.0
    """Tokens allowed per second of audio (plus :data:`LENGTH_SLACK`), so a model stuck in a
    loop stops near the length a real answer could have; speech runs at ~3 words/s, and 30
    leaves room for byte-level tokenizers. None disables the bound."""
    constrain_labels: bool = True
    """Restrict classification answers to the task's label set."""
    joint: bool | Sequence[str] = False
    """The model answers ``"ASR: <transcript> | <task>: <answer>"`` (see :func:`joint_target`):
    ``True`` for every task, or the tasks trained jointly (``data.joint_tasks``)."""
    threshold: float = 0.5
    """Head probability at which a multi-label task's label is predicted, unless a threshold
    chosen on a development set is given for the task."""

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.max_tokens_per_audio_second is not None and self.max_tokens_per_audio_second <= 0:
            raise ValueError(
                "max_tokens_per_audio_second must be > 0 or None, "
                f"got {self.max_tokens_per_audio_second}"
            )
        if not isinstance(self.joint, bool):
            self.joint = list(self.joint)

    def is_joint(self, task: str) -> bool:
        """Whether ``task``'s answers come after a transcript (never ``asr``'s: its answer is
        the transcript, and training keeps it plain)."""
        named = self.joint is True or (self.joint is not False and task in self.joint)
        return named and task != "asr"


def select(batch: Batch, indices: Sequence[int]) -> Batch:
    """The sub-batch of ``indices``: tensors indexed on dim 0, lists picked item by item."""
    return {
        key: value[list(indices)]
        if isinstance(value, torch.Tensor)
        else [value[i] for i in indices]
        for key, value in batch.items()
    }


def token_limits(
    model: SpeechLLM,
    audio_lengths: torch.Tensor,
    config: DecodingConfig,
    tasks: Sequence[str] | None = None,
) -> list[int]:
    """Per-item generation budget: ``max_new_tokens``, tightened by the audio-length bound.

    A joint answer writes the transcript before the answer, so an item of a joint task (given
    ``tasks``) gets that budget for its transcript plus ``max_new_tokens`` for the answer.
    """
    if config.max_tokens_per_audio_second is None:
        limits = [config.max_new_tokens] * len(audio_lengths)
    else:
        rate = config.max_tokens_per_audio_second
        limits = [
            min(config.max_new_tokens, math.ceil(rate * s) + LENGTH_SLACK)
            for s in model.encoder.seconds(audio_lengths).tolist()
        ]
    joint = [config.is_joint(t) for t in tasks] if tasks is not None else [False] * len(limits)
    return [n + config.max_new_tokens * j for n, j in zip(limits, joint, strict=True)]


def _encoded(model: SpeechLLM, batch: Batch, audio: AudioEmbeddings | None) -> AudioEmbeddings:
    """``audio`` if the caller already encoded the batch, else one encoder pass now."""
    return (
        audio if audio is not None else model.encode_audio(batch["audio"], batch["audio_lengths"])
    )


def _generate(
    model: SpeechLLM,
    batch: Batch,
    config: DecodingConfig,
    max_new_tokens: int,
    audio: AudioEmbeddings | None,
    **kwargs: Any,
) -> list[list[int]]:
    """New token ids per item, cut before ``eos``, with the config's search settings."""
    return model.generate_ids(
        _encoded(model, batch, audio),
        batch["instructions"],
        max_new_tokens,
        num_beams=config.num_beams,
        repetition_penalty=config.repetition_penalty,
        **kwargs,
    )


@torch.no_grad()
def generate_free(
    model: SpeechLLM,
    batch: Batch,
    config: DecodingConfig,
    audio: AudioEmbeddings | None = None,
    **generate_kwargs: Any,
) -> list[str]:
    """Greedy or beam-search answers for a batch, one string per item.

    The batch runs to its longest item's budget (:func:`token_limits`) and each answer is then
    cut to its own budget, so with greedy search an item's answer does not depend on the
    items batched with it.

    Args:
        model: The speech LLM (in eval mode).
        batch: A batch in the data contract.
        config: Decoding settings.
        audio: The batch already encoded (``model.encode_audio``); encoded here if None.
        **generate_kwargs: Further Hugging Face ``generate`` settings (e.g. ``suppress_tokens``).
    """
    limits = token_limits(model, batch["audio_lengths"], config, batch["tasks"])
    rows = _generate(model, batch, config, max(limits), audio, **generate_kwargs)
    cut = [row[:limit] for row, limit in zip(rows, limits, strict=True)]
    return model.decode(cut)


class LabelTrie:
    """Every token prefix of ``labels`` (each ended by ``eos``) mapped to its allowed next tokens.

    Labels sharing a prefix (``set_alarm`` / ``set_alarm_time``) share trie nodes; ``eos``
    after a complete label is what tells them apart.

    Args:
        labels: The label set.
        tokenize: Text -> token ids, as used for training targets.
        eos_token_id: The token that ends every target.
    """

    def __init__(
        self, labels: Sequence[str], tokenize: Callable[[str], list[int]], eos_token_id: int
    ) -> None:
        self.eos = eos_token_id
        self.labels: dict[tuple[int, ...], str] = {}
        self.next_tokens: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for label in labels:
            ids = tuple(tokenize(label))
            if not ids or ids in self.labels:
                raise ValueError(f"label {label!r} is empty or tokenizes like another label")
            self.labels[ids] = label
            for i, token in enumerate((*ids, eos_token_id)):
                self.next_tokens[ids[:i]].add(token)

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Tokens that keep ``prefix`` inside the label set (``eos`` once it is finished)."""
        return sorted(self.next_tokens.get(tuple(prefix), {self.eos}))

    @property
    def depth(self) -> int:
        """Tokens of the longest label plus its ``eos``: enough steps for any label."""
        return max(map(len, self.labels)) + 1


@torch.no_grad()
def generate_constrained(
    model: SpeechLLM,
    batch: Batch,
    config: DecodingConfig,
    tries: Sequence[LabelTrie],
    audio: AudioEmbeddings | None = None,
) -> list[str]:
    """Answers restricted to each item's label set, so every answer is one of its labels.

    Args:
        model: The speech LLM (in eval mode).
        batch: A batch in the data contract.
        config: Decoding settings (``num_beams``, ``repetition_penalty``).
        tries: One label trie per item (items of different tasks can share a batch).
        audio: The batch already encoded (``model.encode_audio``); encoded here if None.
    """
    # Hugging Face passes the decoder ids: only the generated tokens for a decoder-only model
    # fed inputs_embeds, the decoder start token first for an encoder-decoder.
    start = int(model.llm.is_encoder_decoder)

    def allowed(item: int, ids: torch.Tensor) -> list[int]:
        return tries[item].allowed(ids[start:].tolist())

    depth = max(trie.depth for trie in tries)
    rows = _generate(model, batch, config, depth, audio, prefix_allowed_tokens_fn=allowed)
    return [trie.labels[tuple(row)] for trie, row in zip(tries, rows, strict=True)]


@torch.no_grad()
def score_labels(
    model: SpeechLLM,
    batch: Batch,
    labels: Sequence[str],
    prefixes: Sequence[str] | None = None,
    max_rows: int = 64,
    audio: AudioEmbeddings | None = None,
) -> torch.Tensor:
    """Log-probability of each label for each item, normalised over the label set.

    A label's score is the summed log-likelihood of its tokens and ``eos`` (the log-probability
    of the whole answer, the quantity decoding maximises), not the per-token mean: length
    normalisation would favour long labels and is not a probability. A log-softmax over the
    labels then gives a distribution whose argmax is a prediction and whose probabilities
    feed :func:`speechllm.evaluation.metrics.auroc`.

    Every (item, label) pair is one row of ``model.score``, run ``max_rows`` rows at a time;
    the rows repeat each item's audio embeddings (one encoder pass per item, not per label).

    Args:
        model: The speech LLM (in eval mode).
        batch: A batch in the data contract (its ``targets`` are ignored).
        labels: The label set (the columns).
        prefixes: Text each item's answer starts with before the label (joint decoding's
            ``"ASR: ... | task: "``); none by default.
        max_rows: Rows per forward pass, to bound memory.
        audio: The batch already encoded (``model.encode_audio``); encoded here if None.

    Returns:
        ``(B, L)`` log-probabilities; ``exp`` of each row sums to 1.
    """
    n_items, n_labels = len(batch["instructions"]), len(labels)
    total, prefixes = n_items * n_labels, prefixes or [""] * n_items
    encoded = _encoded(model, batch, audio)
    log_likelihood = []
    for first in range(0, total, max_rows):
        pairs = [divmod(r, n_labels) for r in range(first, min(first + max_rows, total))]
        items = [b for b, _ in pairs]
        out = model.score(
            encoded.select(items),
            [batch["instructions"][b] for b in items],
            [prefixes[b] + labels[j] for b, j in pairs],
        )
        log_likelihood.append(-out.item_loss_sum)
    return torch.cat(log_likelihood).view(n_items, n_labels).log_softmax(-1)


@torch.no_grad()
def head_probabilities(
    model: SpeechLLM,
    batch: Batch,
    task: str,
    labels: Sequence[str],
    audio: AudioEmbeddings | None = None,
) -> torch.Tensor:
    """``(B, len(labels))`` sigmoid probabilities of ``task``'s head, columns in ``labels`` order.

    Args:
        model: The speech LLM (in eval mode) with a head for ``task``.
        batch: A batch in the data contract, all of ``task``.
        labels: The label set to report; the same labels as the head's, in any order.
        audio: The batch's audio already encoded (encoded here otherwise).
    """
    head_labels = model.heads[task].labels
    if sorted(head_labels) != sorted(labels):
        raise ValueError(
            f"task {task!r}: the head's labels {head_labels} differ from the evaluation's "
            f"label set {list(labels)}"
        )
    if audio is None:
        audio = model.encode_audio(batch["audio"], batch["audio_lengths"])
    probs = model.classify(audio, batch["instructions"], task)
    return probs[:, [head_labels.index(label) for label in labels]]


def head_answers(
    task: str, probs: torch.Tensor, labels: Sequence[str], threshold: float
) -> list[str]:
    """Answers from head probabilities: the top label of a ``label`` task; every label at or
    over ``threshold`` of a ``labels`` task, in label-set order (``none`` if there is none)."""
    if get_task(task).scoring == "label":
        return [labels[j] for j in probs.argmax(-1).tolist()]
    return [
        ", ".join(lab for lab, on in zip(labels, row, strict=True) if on) or NO_LABEL
        for row in (probs >= threshold).tolist()
    ]


@torch.no_grad()
def decode_batch(
    model: SpeechLLM,
    batch: Batch,
    config: DecodingConfig,
    labels_by_task: dict[str, list[str]] | None = None,
    thresholds: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Decode a mixed-task batch, each item by its task's route, one record per item.

    Items of a task with a head are read from it. Other items whose task has a label set are
    scored against it (``label_scores``: probabilities in the order of
    ``labels_by_task[task]``) and, for single-label tasks with ``constrain_labels``, answered
    with a label; the rest are generated freely. With ``joint``, labelled items first generate
    their transcript freely and the best-scoring label completes :func:`joint_target`.

    Args:
        model: The speech LLM (in eval mode).
        batch: A batch in the data contract.
        config: Decoding settings.
        labels_by_task: Label set per classification task (a head's task must have one).
        thresholds: Per multi-label task, the head threshold chosen on a development set
            (``config.threshold`` otherwise).

    Returns:
        Per item, in batch order: ``id``, ``task``, ``instruction``, ``prediction``, ``target``
        and, for labelled tasks, ``label_scores``.
    """
    labels_by_task, thresholds = labels_by_task or {}, thresholds or {}
    records = [
        {"id": i, "task": t, "instruction": ins, "target": tgt}
        for i, t, ins, tgt in zip(
            batch["ids"], batch["tasks"], batch["instructions"], batch["targets"], strict=True
        )
    ]
    routes = [
        get_task(r["task"]).route(
            r["task"] in model.heads,
            r["task"] in labels_by_task,
            config.constrain_labels and not config.is_joint(r["task"]),
        )
        for r in records
    ]
    audio = model.encode_audio(batch["audio"], batch["audio_lengths"])
    for task in {r["task"] for r, route in zip(records, routes, strict=True) if route == "head"}:
        items = [b for b, r in enumerate(records) if r["task"] == task]
        labels = labels_by_task[task]
        part = select(batch, items)
        probs = head_probabilities(model, part, task, labels, audio.select(items)).float()
        answers = head_answers(task, probs, labels, thresholds.get(task, config.threshold))
        for k, b in enumerate(items):
            records[b] |= {"prediction": answers[k], "label_scores": probs[k].tolist()}
    free = [b for b, route in enumerate(routes) if route == "free"]
    if free:
        texts = generate_free(model, select(batch, free), config, audio.select(free))
        for b, text in zip(free, texts, strict=True):
            records[b]["prediction"] = text
    constrained = [b for b, route in enumerate(routes) if route == "constrained"]
    if constrained:
        tries = {
            task: LabelTrie(labels_by_task[task], model.llm.tokenize, model.llm.eos_token_id)
            for task in {records[b]["task"] for b in constrained}
        }
        answers = generate_constrained(
            model,
            select(batch, constrained),
            config,
            [tries[records[b]["task"]] for b in constrained],
            audio.select(constrained),
        )
        for b, answer in zip(constrained, answers, strict=True):
            records[b]["prediction"] = answer
    scored = {r["task"] for r, route in zip(records, routes, strict=True) if route != "head"}
    for task in scored & set(labels_by_task):
        _score_task(model, batch, audio, config, records, task, labels_by_task[task])
    return records


def _score_task(
    model: SpeechLLM,
    batch: Batch,
    audio: AudioEmbeddings,
    config: DecodingConfig,
    records: list[dict[str, Any]],
    task: str,
    labels: list[str],
) -> None:
    """Add ``label_scores`` to ``task``'s records (and, when joint, the best label's answer)."""
    items = [b for b, r in enumerate(records) if r["task"] == task]
    prefixes = None
    if config.is_joint(task):
        prefixes = [joint_target(parse_joint(records[b]["prediction"])[0], task, "") for b in items]
    scores = score_labels(
        model, select(batch, items), labels, prefixes, audio=audio.select(items)
    ).exp()
    best = scores.argmax(-1).tolist()
    single = get_task(task).scoring == "label"
    for k, b in enumerate(items):
        records[b]["label_scores"] = scores[k].tolist()
        if prefixes is not None and config.constrain_labels and single:
            records[b]["prediction"] = prefixes[k] + labels[best[k]]
