"""Does the speech LLM still work as a text model? Fixed questions, no audio, base vs trained.

Training touches the LLM only through its adapters, but those adapters run on every input,
text-only ones too (unless the model is ``audio_gated``); a speech LLM that has forgotten how
to answer plain questions has lost what makes it more than an ASR model. Each question has a
checkable answer (any of a few accepted words in the reply), asked in the LLM's own chat
format, greedily, once with the adapters off (the base model) and once with them on (the
trained model).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from speechllm.models.speech_llm import SpeechLLM

QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("paris",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("What colour is the sky on a clear day?", ("blue",)),
    ("What is two plus two?", ("four", "4")),
    ("Which planet do we live on?", ("earth",)),
    ("What do bees make?", ("honey",)),
    ("What is frozen water called?", ("ice",)),
    ("How many legs does a spider have?", ("eight", "8")),
)
"""(question, accepted answer words): general knowledge any instruct LLM of this size knows."""


@torch.inference_mode()
def answer_text(model: SpeechLLM, questions: Sequence[str], max_new_tokens: int = 32) -> list[str]:
    """Greedy answers to text-only ``questions``, laid out as the model lays out text items (its
    chat format, else the question and a newline), one at a time (no padding to reason about)."""
    answers = []
    for question in questions:
        ids = model.generate_ids(None, [question], max_new_tokens)
        answers.append(model.decode(ids)[0].strip())
    return answers


def _right(answer: str, accepted: Sequence[str]) -> bool:
    words = set(re.findall(r"[a-z0-9]+", answer.lower()))
    return any(a in words for a in accepted)


def text_skills(
    model: SpeechLLM, questions: Sequence[tuple[str, Sequence[str]]] = QUESTIONS
) -> dict[str, Any]:
    """The base LLM's and the trained model's answers and accuracy (percent) on ``questions``."""
    asked = [q for q, _ in questions]
    with model.llm.adapters_off():
        base = answer_text(model, asked)
    trained = answer_text(model, asked)
    rows = [
        {"question": q, "base": b, "trained": t, "base_right": _right(b, ok),
         "trained_right": _right(t, ok)}
        for (q, ok), b, t in zip(questions, base, trained, strict=True)
    ]  # fmt: skip
    n = len(rows)
    return {
        "base_accuracy": 100.0 * sum(r["base_right"] for r in rows) / n,
        "trained_accuracy": 100.0 * sum(r["trained_right"] for r in rows) / n,
        "n": n,
        "answers": rows,
    }


def text_skills_section(skills: dict[str, Any]) -> str:
    """A report section: accuracy before and after, and each answer side by side."""
    lines = [
        "## Text skills kept (no audio)",
        "",
        f"Right answers: base LLM {skills['base_accuracy']:.0f} %, trained model "
        f"{skills['trained_accuracy']:.0f} % ({skills['n']} questions).",
        "",
        "| question | base LLM | trained |",
        "|---|---|---|",
    ]
    for row in skills["answers"]:
        base, trained = (row[k].replace("|", "/").replace("\n", " ") for k in ("base", "trained"))
        lines.append(f"| {row['question']} | {base} | {trained} |")
    return "\n".join(lines) + "\n"
