"""Instruction templates: ``<task>.yaml`` files with ``seen:`` (training) and ``heldout:``
(evaluating generalisation to unseen wordings) template lists.

Templates may use ``{keyword}`` (``meta.keyword``), ``{tgt_lang}`` (language name from the
``tgt_lang`` code) and ``{labels}`` (comma-separated label set); a template is only drawn when
all of its placeholders are known for the item.
"""

from __future__ import annotations

import json
import random
import string
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from speechllm.data.manifest import ManifestEntry
from speechllm.tasks import get_task

SPLITS = ("seen", "heldout")

LANGUAGES = {
    "ar": "Arabic", "ca": "Catalan", "cy": "Welsh", "de": "German", "en": "English",
    "es": "Spanish", "et": "Estonian", "fa": "Persian", "fr": "French", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "lv": "Latvian", "mn": "Mongolian", "nl": "Dutch",
    "pt": "Portuguese", "ru": "Russian", "sl": "Slovenian", "sv": "Swedish", "ta": "Tamil",
    "tr": "Turkish", "zh": "Chinese",
}  # fmt: skip
"""Language names for ``{tgt_lang}`` (the CoVoST 2 languages); other codes are used verbatim."""

__all__ = [
    "LANGUAGES",
    "SPLITS",
    "heldout_line",
    "instruction_for",
    "instruction_split_of",
    "load_templates",
    "register_templates",
    "sample_instruction",
    "write_heldout_copy",
]

_REGISTERED: dict[str, dict[str, tuple[str, ...]]] = {}
"""Templates of tasks registered from user code (:func:`register_templates`)."""


def _checked(data: object, where: str) -> dict[str, tuple[str, ...]]:
    templates = {}
    for split in SPLITS:
        items = data.get(split) if isinstance(data, dict) else None
        if not items or not all(isinstance(t, str) for t in items):
            raise ValueError(f"{where}: {split!r} must be a non-empty list of strings")
        templates[split] = tuple(items)
    return templates


def register_templates(task: str, seen: list[str], heldout: list[str]) -> None:
    """Give a task registered from user code (``register_task``) its instruction templates,
    so it needs no file inside the package.

    Args:
        task: A registered task name without templates yet.
        seen: Templates for training (and the ``seen`` evaluation split).
        heldout: Templates kept out of training, to measure generalisation.
    """
    get_task(task)
    if task in _REGISTERED or (resources.files(__name__) / f"{task}.yaml").is_file():
        raise ValueError(f"task {task!r} already has instruction templates")
    _REGISTERED[task] = _checked({"seen": seen, "heldout": heldout}, f"templates of {task!r}")


def load_templates(task: str) -> dict[str, tuple[str, ...]]:
    """Templates of a task by split: registered ones, else
    ``speechllm/data/instructions/<task>.yaml``."""
    if task in _REGISTERED:
        return _REGISTERED[task]
    return _load_file(task)


@cache
def _load_file(task: str) -> dict[str, tuple[str, ...]]:
    path = resources.files(__name__) / f"{task}.yaml"
    if not path.is_file():
        raise ValueError(
            f"no instruction templates for task {task!r}: add {task}.yaml or call "
            "register_templates"
        )
    return _checked(yaml.safe_load(path.read_text(encoding="utf-8")), f"{task}.yaml")


def sample_instruction(
    task: str, rng: random.Random, split: str = "seen", **fields: str | None
) -> str:
    """Draw one template of ``task`` whose placeholders are all given, and fill it.

    Args:
        task: Task name.
        rng: Source of randomness (seeded by the caller for reproducibility).
        split: ``"seen"`` for training, ``"heldout"`` to evaluate unseen wordings.
        **fields: Placeholder values (``keyword``, ``tgt_lang``, ``labels``); ``None`` means
            unknown, so templates using it are skipped.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    known = {key for key, value in fields.items() if value is not None}
    usable = [t for t in load_templates(task)[split] if _placeholders(t) <= known]
    if not usable:
        raise ValueError(
            f"no {split} template of task {task!r} can be filled with fields {sorted(known)}"
        )
    return rng.choice(usable).format(**fields)


def instruction_split_of(entry: ManifestEntry, default: str) -> str:
    """The template split a line is prompted from: its ``meta.instruction_split``, else
    ``default`` (held-out manifests mark their lines so they can be mixed with seen ones)."""
    split = entry.meta.get("instruction_split", default)
    if split not in SPLITS:
        raise ValueError(
            f"{entry.source}:{entry.line}: meta.instruction_split must be one of {SPLITS}, "
            f"got {split!r}"
        )
    return split


def heldout_line(line: dict[str, Any]) -> dict[str, Any]:
    """A manifest line (a JSON object) asked with held-out instructions instead: its id
    suffixed ``-heldout`` and ``meta.instruction_split: heldout``, so a copy of a test set can
    sit beside it (the benchmark's ``test_heldout_instructions.jsonl``)."""
    meta = {**line.get("meta", {}), "instruction_split": "heldout"}
    return {**line, "id": f"{line['id']}-heldout", "meta": meta}


def write_heldout_copy(manifest: str | Path, out: str | Path) -> Path:
    """``manifest`` line for line as :func:`heldout_line`, audio paths made absolute (the copy
    may live elsewhere); returns ``out``."""
    manifest, out = Path(manifest), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = manifest.parent.resolve()
    with out.open("w", encoding="utf-8") as f:
        for text in manifest.read_text(encoding="utf-8").splitlines():
            if text.strip():
                line = heldout_line(json.loads(text))
                line["audio"] = str(folder / line["audio"])
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return out


def instruction_for(entry: ManifestEntry, split: str, rng: random.Random) -> str:
    """The instruction for a manifest entry: its own ``instruction`` or a sampled template.

    Args:
        entry: The manifest entry.
        split: Template split, as in :func:`sample_instruction`.
        rng: Source of randomness.
    """
    if entry.instruction:
        return entry.instruction
    labels = entry.labels or get_task(entry.task).labels
    return sample_instruction(
        entry.task,
        rng,
        split,
        keyword=entry.meta.get("keyword"),
        tgt_lang=LANGUAGES.get(entry.tgt_lang, entry.tgt_lang) if entry.tgt_lang else None,
        labels=", ".join(labels) if labels else None,
    )


@cache
def _placeholders(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)
