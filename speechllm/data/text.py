"""Text-only data modules: raw texts of a domain corpus for the causal-LM step
(:class:`TextDataModule`), labelled texts for a classifier (:class:`TextClassificationData`).

A corpus is any text: a ``.txt`` file (every non-empty line is one text: a sentence, or a
whole note written on one line) or a text classification manifest (``.jsonl``, the ``text`` of
every line: e.g. the admission notes ``speechllm-data import clinical-outcomes`` wrote, their
labels unused). Both are read within the bounds of :mod:`speechllm.data.text_classification`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from speechllm.data.errors import ManifestError
from speechllm.data.text_classification import (
    MAX_TEXT_CHARS,
    TextExample,
    label_sets,
    read_label_sets,
    read_text_examples,
)
from speechllm.data.text_items import check_text_file


def read_lines(path: str | Path) -> list[str]:
    """The texts of a corpus: non-empty stripped lines of a UTF-8 ``.txt`` file, or the
    ``text`` fields of a ``.jsonl`` text classification manifest."""
    if str(path).endswith(".jsonl"):
        lines = [example.text for example in read_text_examples([path])]
    else:
        check_text_file(str(path))
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path}: no text lines")
    return lines


class TextDataModule(L.LightningDataModule):
    """Shuffled training batches (seeded) and ordered validation batches of raw strings.

    Args:
        train_file: training corpus (``.txt`` or ``.jsonl``).
        val_file: validation corpus, if any.
        batch_size: texts per batch.
        seed: shuffling seed.
    """

    def __init__(
        self,
        train_file: str,
        val_file: str | None = None,
        batch_size: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.files = {"train": train_file, "val": val_file}
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            read_lines(self.files["train"]),
            batch_size=self.batch_size,
            shuffle=True,
            collate_fn=list,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.files["val"] is None:
            return []
        return DataLoader(read_lines(self.files["val"]), self.batch_size, collate_fn=list)


def _check_labels(example: TextExample, known: list[str] | None, label_file: str | None) -> None:
    if known is None:
        problem = f"task {example.task!r} has no training line, so no head"
    elif outside := sorted(set(example.labels) - set(known)):
        where = label_file or "the training data's label sets (give data.label_file)"
        problem = f"labels {outside} of task {example.task!r} are not in {where}"
    else:
        return
    raise ManifestError(problem, reason="bad_label", source=example.source, line=example.line)


def batch(examples: Sequence[TextExample]) -> dict[str, list[str]]:
    """Examples as a batch: ``texts``, ``tasks``, ``targets`` and ``ids``."""
    return {
        "texts": [e.text for e in examples],
        "tasks": [e.task for e in examples],
        "targets": [e.target for e in examples],
        "ids": [e.id for e in examples],
    }


class TextClassificationData(L.LightningDataModule):
    """Shuffled (seeded) training batches and ordered validation batches of text examples.

    The manifests are read and checked at construction, so a bad line fails before a model is
    built; :meth:`label_sets` sizes the classifier's heads (``train_text`` asks for it).

    Args:
        train_manifests: training manifests.
        val_manifests: validation manifests (``val/loss``), if any.
        label_file: a ``label_sets.json``; ``None``: each task's labels in the training data.
        batch_size: examples per batch.
        seed: shuffling seed.
        max_chars: longest text read (characters).
    """

    def __init__(
        self,
        train_manifests: list[str],
        val_manifests: list[str] | None = None,
        label_file: str | None = None,
        batch_size: int = 16,
        seed: int = 0,
        max_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not train_manifests:
            raise ValueError("give at least one training manifest (data.train_manifests)")
        self.train = read_text_examples(train_manifests, max_chars=max_chars)
        self.val = read_text_examples(val_manifests or [], max_chars=max_chars)
        self.batch_size, self.seed = batch_size, seed
        found = label_sets(self.train)
        if label_file is not None:
            given = read_label_sets(label_file)
            missing = sorted(set(found) - set(given))
            if missing:
                raise ValueError(f"{label_file}: no label set for task(s) {missing}")
            found = {task: given[task] for task in found}
        self._label_sets = found
        for example in [*self.train, *self.val]:
            _check_labels(example, found.get(example.task), label_file)
        small = [task for task, labels in found.items() if len(labels) < 2]
        if small:
            raise ValueError(f"task(s) {small} have fewer than two labels in the training data")

    def label_sets(self) -> dict[str, list[str]]:
        """Each trained task's labels, the column order of its head."""
        return dict(self._label_sets)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train,
            batch_size=self.batch_size,
            shuffle=True,
            collate_fn=batch,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> DataLoader | list:
        if not self.val:
            return []
        return DataLoader(self.val, batch_size=self.batch_size, collate_fn=batch)
