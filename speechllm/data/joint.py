"""Joint targets: the model writes what was said, then the task's answer.

SpeechVerse's joint decoding conditions an answer on the model's own transcript::

    ASR: <transcript> | <task>: <answer>

The format has one home, here, at the bottom layer: training targets are built from it
(:func:`with_joint_targets`, through ``data.joint_tasks``) and evaluation decodes and splits
it (:func:`parse_joint`, ``decoding.joint``), so the two cannot drift apart.

A line's transcript is its ``meta.transcript`` or, failing that, the target of the ``asr``
line of the same recording (same ``audio`` and ``offset``), so a corpus that ships one
``asr`` line per recording (LibriSpeech, SLURP, the synthetic benchmark) needs nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace

from speechllm.data.errors import ManifestError
from speechllm.data.manifest import ManifestEntry

SEPARATOR = "|"
_JOINT = re.compile(r"\s*ASR:\s*(?P<transcript>.*?)\s*\|\s*[\w-]+\s*:\s*(?P<answer>.*)", re.DOTALL)


def joint_target(transcript: str, task: str, answer: str) -> str:
    """The joint ``"ASR: <transcript> | <task>: <answer>"`` string, for training targets and
    decoding alike, so both agree with :func:`parse_joint`.

    Args:
        transcript: What was said; must not contain ``|`` (the separator).
        task: Task name.
        answer: The task's answer.
    """
    if SEPARATOR in transcript:
        raise ValueError(f"a joint transcript cannot contain '|': {transcript!r}")
    return f"ASR: {transcript} | {task}: {answer}"


def parse_joint(prediction: str) -> tuple[str, str]:
    """Split a joint decoding ``"ASR: <transcript> | <task>: <answer>"`` into its two parts.

    A generation that breaks the format is taken to be an answer without a transcript, so the
    task is still scored and WER counts the missing transcript as deletions.

    Args:
        prediction: The generated text.

    Returns:
        ``(transcript, answer)``, both stripped.
    """
    match = _JOINT.fullmatch(prediction)
    if match is None:
        return "", prediction.strip()
    return match["transcript"], match["answer"].strip()


def transcripts(entries: Iterable[ManifestEntry]) -> dict[str, str]:
    """Line id -> transcript, for every line that has one (see the module docstring)."""
    entries = list(entries)
    by_recording = {(e.audio, e.offset): e.target for e in entries if e.task == "asr"}
    found = {}
    for entry in entries:
        text = entry.meta.get("transcript") or by_recording.get((entry.audio, entry.offset))
        if text:
            found[entry.id] = str(text)
    return found


def with_transcripts(entries: Sequence[ManifestEntry]) -> list[ManifestEntry]:
    """``entries`` with ``meta.transcript`` filled from their recording's ``asr`` line where
    they have none: distillation (the ``kd`` objective) lets the text LLM read it."""
    known = transcripts(entries)
    return [
        replace(e, meta={**e.meta, "transcript": known[e.id]})
        if e.id in known and "transcript" not in e.meta and e.task != "asr"
        else e
        for e in entries
    ]


def with_joint_targets(
    entries: Sequence[ManifestEntry], tasks: Collection[str]
) -> list[ManifestEntry]:
    """``entries`` with the lines of ``tasks`` that have a transcript retargeted to
    :func:`joint_target`; every other line unchanged.

    Raises:
        ManifestError: A transcript contains the separator (names the file and line).
    """
    if not tasks:
        return list(entries)
    known = transcripts(entries)
    out = []
    for entry in entries:
        if entry.task in tasks and entry.task != "asr" and entry.id in known:
            if SEPARATOR in known[entry.id]:
                raise ManifestError(
                    f"transcript {known[entry.id]!r} contains {SEPARATOR!r}, the joint separator",
                    reason="joint_separator",
                    source=entry.source,
                    line=entry.line,
                )
            target = joint_target(known[entry.id], entry.task, entry.target)
            entry = replace(entry, target=target)
        out.append(entry)
    return out
