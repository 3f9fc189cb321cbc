"""Unseen tasks: instructions for tasks no training mixture has, scored where an answer can be
checked.

A speech LLM that only learned its training tasks is an ASR model with a classifier bolted on;
one that kept its LLM's abilities answers new questions about the recording. Each recording with
an ASR line (its target is the transcript) is asked every instruction of :data:`UNSEEN_TASKS`,
greedily, and each answer is checked against a reference computed from the transcript::

    ASR lines ─► one line per recording (first ``limit``) ─► eval_batches ─► encode once
                                                                              │
                 answers ◄── generate_ids, one instruction at a time ◄────────┘
                    │
                    └─► per task: reference from the transcript (or meta.kind), its checker

The instructions share no wording with any packaged template (``tests/evaluation/
test_unseen_tasks.py`` checks), and the report keeps them apart from the seen and held-out
instruction tables: a held-out instruction is a new wording of a trained task, an unseen one a
task that was never trained. Transcripts are compared as words after :func:`normalize_text`
(case folded, punctuation dropped, numbers written as digits spelled out).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch.utilities import move_data_to_device

from speechllm.data.datamodule import eval_batches
from speechllm.data.features import Featurizer
from speechllm.data.manifest import ManifestEntry
from speechllm.evaluation.metrics import accuracy, uar
from speechllm.evaluation.normalize import normalize_text, transcript_normalizer
from speechllm.models.speech_llm import SpeechLLM

DEFAULT_LIMIT = 60
"""Recordings asked by default: every one costs a generation per unseen task."""

MAX_NEW_TOKENS = 32
"""Tokens per answer: enough for a one-sentence reply, the longest answer asked for."""


def words(text: str) -> list[str]:
    """``text``'s words as compared here: :func:`normalize_text`, split on spaces."""
    return normalize_text(text).split()


def _percent(hits: Sequence[bool]) -> float:
    return 100.0 * sum(hits) / len(hits)


# --- word count ---------------------------------------------------------------------------


def word_count_reference(transcript: str, meta: dict[str, Any]) -> int | None:
    """The transcript's number of :func:`words` (a "21" written as digits counts as the two
    words it is spoken as); ``None`` for an empty transcript."""
    return len(words(transcript)) or None


def spoken_number(answer: str) -> int | None:
    """The first whole number in ``answer``, written as digits or as words ("seven",
    "twenty-one", "one hundred and five"; read by Whisper's English normaliser); ``None`` when
    it has none."""
    match = re.search(r"\d+", transcript_normalizer("whisper")(answer))
    return int(match.group()) if match else None


def word_count_scores(answers: Sequence[str], references: Sequence[int]) -> dict[str, float]:
    """``accuracy``: share of answers whose first number (:func:`spoken_number`) equals the
    transcript's word count (an answer without a number is wrong); ``mae``: mean absolute
    difference in words over the answers that give a number; ``answered``: share of those."""
    numbers = [spoken_number(a) for a in answers]
    scores = {
        "accuracy": _percent([n == r for n, r in zip(numbers, references, strict=True)]),
        "answered": _percent([n is not None for n in numbers]),
    }
    errors = [abs(n - r) for n, r in zip(numbers, references, strict=True) if n is not None]
    if errors:
        scores["mae"] = sum(errors) / len(errors)
    return scores


# --- is it a question? --------------------------------------------------------------------


def question_reference(transcript: str, meta: dict[str, Any]) -> str | None:
    """``"yes"`` or ``"no"``: the line's ``meta.kind`` when it has one (the synthetic benchmark
    marks each sentence ``question``, ``command``, ``statement``...; its transcripts carry no
    punctuation, only the text eSpeak reads ends in ``?``), else the transcript's last mark
    (``?``: yes; ``.`` or ``!``: no); ``None`` (not scored) for an unpunctuated transcript
    without ``meta.kind``."""
    if "kind" in meta:
        return "yes" if meta["kind"] == "question" else "no"
    end = transcript.rstrip()[-1:]
    return {"?": "yes", ".": "no", "!": "no"}.get(end)


def yes_no(answer: str) -> str:
    """The answer's first word if it is ``yes`` or ``no`` ("Yes, they are." -> ``yes``), else
    ``""`` (malformed: counted wrong)."""
    first = words(answer)[:1]
    return first[0] if first in (["yes"], ["no"]) else ""


def question_scores(answers: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``uar``: mean recall of yes and no (most utterances are not questions, so always "no"
    scores 50, not the share of non-questions); ``accuracy``; ``answered``: share of answers
    that start with yes or no (:func:`yes_no`)."""
    said = [yes_no(a) for a in answers]
    return {
        "uar": uar(said, references),
        "accuracy": accuracy(said, references),
        "answered": _percent([s != "" for s in said]),
    }


# --- first word ---------------------------------------------------------------------------


def first_word_reference(transcript: str, meta: dict[str, Any]) -> str | None:
    """The transcript's first word (:func:`words`); ``None`` for an empty transcript."""
    return next(iter(words(transcript)), None)


def first_word_scores(answers: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``accuracy``: share of answers whose first word (:func:`words`, so ``"Can."`` is
    ``can``) is the transcript's first word. The instruction asks for that word alone, so
    "The first word is can" is wrong."""
    said = [next(iter(words(a)), "") for a in answers]
    return {"accuracy": _percent([s == r for s, r in zip(said, references, strict=True)])}


# --- three-word summary -------------------------------------------------------------------


def transcript_words(transcript: str, meta: dict[str, Any]) -> list[str] | None:
    """The transcript's :func:`words`; ``None`` for an empty transcript."""
    return words(transcript) or None


def summary_scores(answers: Sequence[str], references: Sequence[list[str]]) -> dict[str, float]:
    """``three_words``: share of answers of exactly three :func:`words`; ``precision``: the
    share of an answer's words that occur in the transcript, averaged over answers (an empty
    answer scores 0). Precision rewards extractive summaries: it bounds invention, not quality
    (an apt abstractive summary scores low)."""
    said = [words(a) for a in answers]
    found = [
        sum(w in set(ref) for w in s) / len(s) if s else 0.0
        for s, ref in zip(said, references, strict=True)
    ]
    return {
        "three_words": _percent([len(s) == 3 for s in said]),
        "precision": 100.0 * sum(found) / len(found),
    }


# --- a reply ------------------------------------------------------------------------------


def repeats(answer: Sequence[str], transcript: Sequence[str]) -> bool:
    """Whether a non-empty answer (as :func:`words`) is a contiguous run of the transcript's
    words or contains the whole transcript: it parrots what was said instead of replying."""

    def inside(short: Sequence[str], long: Sequence[str]) -> bool:
        return any(
            list(long[i : i + len(short)]) == list(short) for i in range(len(long) - len(short) + 1)
        )

    return bool(answer) and (inside(answer, transcript) or inside(transcript, answer))


def reply_scores(answers: Sequence[str], references: Sequence[list[str]]) -> dict[str, float]:
    """No right answer to check: the answers are kept for reading. ``repeats``: share that
    merely repeat the transcript or a piece of it (:func:`repeats`), what a model that only
    learned to transcribe answers; ``empty``: share of empty answers."""
    said = [words(a) for a in answers]
    return {
        "repeats": _percent([repeats(s, ref) for s, ref in zip(said, references, strict=True)]),
        "empty": _percent([not s for s in said]),
    }


@dataclass(frozen=True)
class UnseenTask:
    """One instruction no training task has, and how its answers are checked."""

    name: str
    instruction: str
    reference: Callable[[str, dict[str, Any]], Any]
    """(transcript, the ASR line's ``meta``) -> the reference, or ``None`` where this
    recording cannot be scored (left out of the task's ``n``)."""
    score: Callable[[Sequence[str], Sequence[Any]], dict[str, float]]
    """(answers, references) -> scores in percent (``mae`` in words)."""
    primary: str
    """The score the report's table leads with."""


UNSEEN_TASKS: tuple[UnseenTask, ...] = (
    UnseenTask(
        "word_count",
        "How many words are spoken here? Give the number.",
        word_count_reference,
        word_count_scores,
        "accuracy",
    ),
    UnseenTask(
        "is_question",
        "Is the speaker asking a question? Answer yes or no.",
        question_reference,
        question_scores,
        "uar",
    ),
    UnseenTask(
        "first_word",
        "What is the very first word the speaker says? Reply with only that word.",
        first_word_reference,
        first_word_scores,
        "accuracy",
    ),
    UnseenTask(
        "three_word_summary",
        "Summarise what was said in three words.",
        transcript_words,
        summary_scores,
        "three_words",
    ),
    UnseenTask(
        "reply",
        "If you were talking with this person, what would you say next?",
        transcript_words,
        reply_scores,
        "repeats",
    ),
)
"""The unseen tasks, each checked by its functions above (their docstrings give the rules)."""


def recordings(entries: Sequence[ManifestEntry], limit: int | None) -> list[ManifestEntry]:
    """The first ``limit`` recordings' ASR lines, each recording once (a held-out-instruction
    copy of a manifest repeats its recordings)."""
    unique: dict[tuple[str, float, float], ManifestEntry] = {}
    for entry in entries:
        if entry.task == "asr":
            unique.setdefault((entry.audio, entry.offset, entry.duration), entry)
    return list(unique.values())[:limit]


@torch.no_grad()
def ask(
    model: SpeechLLM,
    lines: Sequence[ManifestEntry],
    featurizer: Featurizer,
    instructions: Sequence[str],
    max_new_tokens: int = MAX_NEW_TOKENS,
    *,
    max_batch_seconds: float = 60.0,
    num_workers: int = 0,
) -> dict[str, list[str]]:
    """Line id -> the greedy answer to each of ``instructions`` about its audio (each batch is
    encoded once and asked every instruction)."""
    device = next(model.parameters()).device
    answers: dict[str, list[str]] = {}
    batches = eval_batches(
        lines, featurizer, max_batch_seconds=max_batch_seconds, num_workers=num_workers
    )
    for batch in batches:
        batch = move_data_to_device(batch, device)
        audio = model.encode_audio(batch["audio"], batch["audio_lengths"])
        per_instruction = [
            model.decode(model.generate_ids(audio, [text] * len(batch["ids"]), max_new_tokens))
            for text in instructions
        ]
        for i, line_id in enumerate(batch["ids"]):
            answers[line_id] = [said[i].strip() for said in per_instruction]
    return answers


def unseen_tasks(
    model: SpeechLLM,
    entries: Sequence[ManifestEntry],
    featurizer: Featurizer,
    limit: int | None = DEFAULT_LIMIT,
    max_new_tokens: int = MAX_NEW_TOKENS,
    tasks: Sequence[UnseenTask] = UNSEEN_TASKS,
    *,
    max_batch_seconds: float = 60.0,
    num_workers: int = 0,
) -> dict[str, Any]:
    """Ask the first ``limit`` recordings with an ASR line every unseen task; score each.

    Args:
        model: The speech LLM (in eval mode), on the device to generate on.
        entries: Manifest lines; only ``asr`` lines are used (their target is the transcript).
        featurizer: The model's featurizer, as :func:`speechllm.evaluation.run.evaluate`
            builds it.
        limit: Recordings to ask (``None``: all): each costs one generation per task.
        max_new_tokens: Tokens per answer, greedy.
        tasks: The unseen tasks to ask.
        max_batch_seconds: Cap on padded audio seconds per batch.
        num_workers: DataLoader worker processes.

    Returns:
        ``{"n": recordings, "tasks": {name: {"instruction", "primary", "n", <scores>}},
        "answers": [{"id", "transcript", <name>: answer, ...}]}`` (``n`` of a task counts the
        recordings it could be scored on), or ``{}`` without ASR lines.
    """
    lines = recordings(entries, limit)
    if not lines:
        return {}
    instructions = [task.instruction for task in tasks]
    said = ask(model, lines, featurizer, instructions, max_new_tokens,
               max_batch_seconds=max_batch_seconds, num_workers=num_workers)  # fmt: skip
    results = {}
    for k, task in enumerate(tasks):
        pairs = [(said[line.id][k], task.reference(line.target, line.meta)) for line in lines]
        pairs = [(answer, ref) for answer, ref in pairs if ref is not None]
        scores = task.score(*zip(*pairs, strict=True)) if pairs else {}
        results[task.name] = {"instruction": task.instruction, "primary": task.primary,
                              "n": len(pairs), **scores}  # fmt: skip
    answers = [
        {"id": line.id, "transcript": line.target,
         **{task.name: answer for task, answer in zip(tasks, said[line.id], strict=True)}}
        for line in lines
    ]  # fmt: skip
    return {"n": len(lines), "tasks": results, "answers": answers}


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def unseen_tasks_section(unseen: dict[str, Any], examples: int = 5) -> str:
    """A report section: each unseen task's instruction and scores, then the first
    ``examples`` recordings' answers side by side (all of them are in ``unseen["answers"]``)."""
    lines = [
        "## Unseen tasks (instructions for tasks never trained)",
        "",
        f"Each of {unseen['n']} recordings was asked every instruction below, greedily, and "
        "its answers checked against its transcript (`speechllm/evaluation/unseen_tasks.py` "
        "gives each rule). `n`: the recordings a task could be scored on (`is_question` needs "
        "a punctuated transcript or `meta.kind`). Scores in percent, `mae` in words.",
        "",
        "| task | instruction | n | primary | value | other scores |",
        "|---|---|---|---|---|---|",
    ]
    for name, scores in unseen["tasks"].items():
        primary = scores["primary"]
        value = f"{scores[primary]:.1f}" if primary in scores else "-"
        others = ", ".join(
            f"{k}={v:.1f}" for k, v in scores.items()
            if k not in ("instruction", "primary", "n", primary)
        )  # fmt: skip
        lines.append(
            f"| {name} | {scores['instruction']} | {scores['n']} | {primary} | {value} | {others} |"
        )
    names = list(unseen["tasks"])
    if examples:
        lines += ["", "| transcript | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in unseen["answers"][:examples]:
        cells = [row["transcript"], *(row[name] for name in names)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
