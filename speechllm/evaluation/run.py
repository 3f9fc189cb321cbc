"""Evaluate a SpeechLLM on manifests: decode every item, score each task, write the report.

::

    dev manifests ─► head probabilities ─► a threshold per multi-label head task
    manifests ─► eval_batches (data) ─► decode_batch ─► score_records (per task, its scoring)
                                                      └─► write_report: predictions.jsonl,
                                                          metrics.json, report.md, PNGs
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import move_data_to_device
from tqdm import tqdm

from speechllm.data.datamodule import eval_batches
from speechllm.data.features import Featurizer
from speechllm.data.instructions import instruction_split_of
from speechllm.data.joint import parse_joint, transcripts
from speechllm.data.manifest import ManifestEntry, read_manifests
from speechllm.evaluation.anchor import anchor_scores
from speechllm.evaluation.ctc_path import ctc_path_scores, ctc_path_section
from speechllm.evaluation.decoding import DecodingConfig, decode_batch, head_probabilities, select
from speechllm.evaluation.metrics import choose_threshold, multi_hot, split_labels
from speechllm.evaluation.report import load_csv_curves, write_report
from speechllm.evaluation.scoring import score_records, score_task
from speechllm.evaluation.unseen_tasks import MAX_NEW_TOKENS, unseen_tasks, unseen_tasks_section
from speechllm.models.head import ClassificationHead
from speechllm.models.speech_llm import SpeechLLM
from speechllm.tasks import get_task


def _first_lines(entries: list[ManifestEntry], limit: int | None) -> list[ManifestEntry]:
    if limit is None:
        return entries
    taken: Counter[str] = Counter()
    kept = []
    for entry in entries:
        if taken[entry.source] < limit:
            taken[entry.source] += 1
            kept.append(entry)
    return kept


def task_labels(
    entries: Iterable[ManifestEntry], heads: Mapping[str, ClassificationHead] | None = None
) -> dict[str, list[str]]:
    """Label set per task: the manifest ``labels`` field, else the task registry's default;
    a task with a classification head takes the head's labels (and order).

    Decoding constrains and scores a whole task against one label set, so lines of a task
    that disagree (with each other or with the head) are an error rather than a silent pick.
    """
    labels: dict[str, tuple[str, ...]] = {
        task: tuple(head.labels) for task, head in (heads or {}).items()
    }
    for entry in entries:
        entry_labels = entry.labels or get_task(entry.task).labels
        if entry_labels is None:
            continue
        known = labels.setdefault(entry.task, entry_labels)
        if sorted(known) != sorted(entry_labels) or (
            known != entry_labels and entry.task not in (heads or {})
        ):
            raise ValueError(
                f"{entry.source}:{entry.line}: task {entry.task!r} has labels "
                f"{list(entry_labels)} but earlier lines or its head have {list(known)}; "
                "evaluation needs one label set per task"
            )
    return {task: list(task_set) for task, task_set in labels.items()}


def languages(records: Iterable[dict[str, Any]], entries: Iterable[ManifestEntry]) -> None:
    """Add each record's spoken ``lang`` and ``tgt_lang`` from its manifest line, in place
    (transcripts are normalised and translations tokenised by language)."""
    by_id = {entry.id: entry for entry in entries}
    for record in records:
        entry = by_id.get(record["id"])
        if entry is None:  # batches not read from manifests (a custom datamodule)
            continue
        record |= {k: v for k, v in (("lang", entry.lang), ("tgt_lang", entry.tgt_lang)) if v}


@torch.no_grad()
def dev_thresholds(
    model: SpeechLLM,
    batches: Iterable[dict[str, Any]],
    labels_by_task: dict[str, list[str]],
) -> dict[str, float]:
    """Per multi-label task with a head, the threshold maximising micro F1 on the dev batches."""
    truth: dict[str, list[np.ndarray]] = defaultdict(list)
    probs: dict[str, list[np.ndarray]] = defaultdict(list)
    device = next(model.parameters()).device
    for batch in batches:
        batch = move_data_to_device(batch, device)
        for task in set(batch["tasks"]):
            if task not in model.heads or get_task(task).scoring != "labels":
                continue
            items = [i for i, t in enumerate(batch["tasks"]) if t == task]
            part, labels = select(batch, items), labels_by_task[task]
            probs[task].append(head_probabilities(model, part, task, labels).float().cpu().numpy())
            truth[task].append(multi_hot([split_labels(t) for t in part["targets"]], labels))
    return {
        task: choose_threshold(np.concatenate(truth[task]), np.concatenate(probs[task]))
        for task in probs
    }


def keep_answers(records: Iterable[dict[str, Any]], decoding: DecodingConfig) -> None:
    """Cut joint tasks' predictions (``"ASR: ... | task: answer"``) to their answer, in place
    (the manifest target is the answer alone), keeping the transcript in ``transcript``."""
    for record in records:
        if decoding.is_joint(record["task"]):
            record["transcript"], record["prediction"] = parse_joint(record["prediction"])


def score_transcripts(
    records: Iterable[dict[str, Any]],
    references: dict[str, str],
    scores: dict[str, dict[str, float]],
    normalizer: str = "auto",
) -> None:
    """Add ``transcript_wer`` beside each joint task's answer metrics, in place: the WER of the
    transcripts its answers were conditioned on, over the lines with a reference transcript
    (:func:`speechllm.data.joint.transcripts`)."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if "transcript" in record and record["id"] in references:
            by_task[record["task"]].append(record)
    for task, rows in by_task.items():
        hypotheses = [r["transcript"] for r in rows]
        langs = [r.get("lang") for r in rows]
        asr = score_task("asr", hypotheses, [references[r["id"]] for r in rows], langs=langs,
                         normalizer=normalizer)  # fmt: skip
        if "wer" in asr:
            scores[task]["transcript_wer"] = asr["wer"]


def evaluate(
    model: SpeechLLM,
    manifests: list[str],
    out_dir: str | Path,
    decoding: DecodingConfig,
    instruction_split: str = "seen",
    max_batch_seconds: float = 60.0,
    limit: int | None = None,
    curves_csv: str | None = None,
    *,
    num_workers: int = 0,
    normalizer: str = "auto",
    dev_manifests: list[str] | None = None,
    anchor: str | None = None,
    tasks: list[str] | None = None,
    unseen: int = 0,
) -> dict[str, Any]:
    """Decode every manifest line, score each task and write the report to ``out_dir``.

    Args:
        model: The speech LLM, on the device to evaluate on.
        manifests: JSONL manifests, read in order.
        out_dir: Gets ``predictions.jsonl``, ``metrics.json``, ``report.md`` and its PNGs.
        decoding: Decoding settings.
        instruction_split: Template split for lines without ``meta.instruction_split``.
        max_batch_seconds: Cap on padded audio seconds per batch.
        limit: Evaluate only the first ``limit`` lines of each manifest (so a quick look at
            a test set and its held-out-instruction copy still scores both).
        curves_csv: A Lightning ``CSVLogger`` ``metrics.csv``, to plot training curves.
        num_workers: DataLoader worker processes.
        normalizer: Transcript normaliser for WER (``speechllm.evaluation.normalize``).
        dev_manifests: Development manifests on which each multi-label head task's
            threshold is chosen (``decoding.threshold`` without them).
        anchor: A Whisper model folder (the encoder's own model) that also transcribes the
            ASR lines (:mod:`speechllm.evaluation.anchor`): ``metrics.json``'s ``anchor`` and
            a report section put its WER beside the speech LLM's.
        tasks: Evaluate only the lines of these tasks (``None``: every line).
        unseen: Also ask the first ``unseen`` recordings with an ASR line (of all the
            manifests' lines, whatever ``tasks`` and ``limit`` keep) instructions of tasks never
            trained (:mod:`speechllm.evaluation.unseen_tasks`): ``metrics.json``'s
            ``unseen_tasks`` and a report section of its own; 0: not asked.

    Returns:
        The ``metrics.json`` document: ``tasks`` (task -> metric -> value, with ``n``),
        ``instruction_splits``, ``confusion_matrices`` and ``scoring`` (what each task was
        scored with); ``anchor`` and ``unseen_tasks`` when asked for; ``ctc_path`` (the CTC
        aligner's own transcript, :mod:`speechllm.evaluation.ctc_path`) when the model has one.
    """
    every_line = read_manifests(manifests)
    if unseen and not any(e.task == "asr" for e in every_line):
        raise ValueError(
            f"unseen={unseen} asks about recordings with an ASR line (the transcript checks the "
            f"answers), and {manifests} have none"
        )
    entries = every_line
    if tasks is not None:
        unknown = set(tasks) - {e.task for e in entries}
        if unknown:
            raise ValueError(f"tasks {sorted(unknown)} have no lines in {manifests}")
        entries = [e for e in entries if e.task in tasks]
    entries = _first_lines(entries, limit)
    position = {entry.id: i for i, entry in enumerate(entries)}
    split_of = {entry.id: instruction_split_of(entry, instruction_split) for entry in entries}
    labels_by_task = task_labels(entries, model.heads)
    featurizer = Featurizer.for_encoder(model.encoder)
    batching = {"max_batch_seconds": max_batch_seconds, "num_workers": num_workers}
    model.eval()
    thresholds = {}
    if dev_manifests:
        dev = eval_batches(read_manifests(dev_manifests), featurizer, **batching)
        thresholds = dev_thresholds(model, dev, labels_by_task)
    batches = eval_batches(entries, featurizer, instruction_split=instruction_split, **batching)
    device = next(model.parameters()).device
    records = []
    for batch in tqdm(batches, desc="evaluating", unit="batch"):
        batch = move_data_to_device(batch, device)
        records += decode_batch(model, batch, decoding, labels_by_task, thresholds)
    for record in records:
        record["instruction_split"] = split_of[record["id"]]
    languages(records, entries)
    keep_answers(records, decoding)
    records.sort(key=lambda record: position[record["id"]])
    scores = score_records(records, labels_by_task, normalizer)
    score_transcripts(records, transcripts(entries), scores, normalizer)
    curves = load_csv_curves(curves_csv) if curves_csv else None
    write_report(out_dir, records, scores, curves, labels_by_task, normalizer, thresholds)
    if anchor:
        add_anchor(Path(out_dir), anchor_scores(anchor, entries, normalizer), scores)
    add_section(Path(out_dir), "ctc_path",
                ctc_path_scores(model, entries, featurizer, normalizer, **batching),
                ctc_path_section)  # fmt: skip
    if unseen:
        asked = unseen_tasks(model, every_line, featurizer, unseen,
                             min(decoding.max_new_tokens, MAX_NEW_TOKENS), **batching)  # fmt: skip
        add_section(Path(out_dir), "unseen_tasks", asked, unseen_tasks_section)
    return json.loads((Path(out_dir) / "metrics.json").read_text())


def add_section(
    out_dir: Path, key: str, doc: dict[str, Any], section: Callable[[dict[str, Any]], str]
) -> None:
    """Put ``doc`` into ``metrics.json`` under ``key`` and ``section(doc)`` at the end of
    ``report.md``; nothing when ``doc`` is empty."""
    if not doc:
        return
    metrics = json.loads((out_dir / "metrics.json").read_text())
    metrics[key] = doc
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with (out_dir / "report.md").open("a") as report:
        report.write("\n" + section(doc))


def add_anchor(out_dir: Path, anchor: dict[str, Any], scores: dict[str, dict[str, float]]) -> None:
    """Put the anchor's WER into ``metrics.json`` and a section of ``report.md``."""
    if not anchor:
        return
    metrics = json.loads((out_dir / "metrics.json").read_text())
    metrics["anchor"] = anchor
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    ours = scores.get("asr", {}).get("wer")
    lines = [
        "",
        "## Anchor: the encoder's own model",
        "",
        f"Whisper ({anchor['model']}), greedy, on the same {anchor['n']} ASR recordings: "
        f"**{anchor['wer']:.1f} WER**; the speech LLM: "
        + (f"**{ours:.1f} WER**." if ours is not None else "no ASR lines."),
        "",
        "| reference | Whisper |",
        "|---|---|",
        *[f"| {e['target']} | {e['whisper']} |" for e in anchor["examples"]],
        "",
    ]
    with (out_dir / "report.md").open("a") as report:
        report.write("\n".join(lines))
