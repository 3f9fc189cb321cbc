"""Manifest entries to model-ready items, and items to contract batches (docs/architecture.md)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from speechllm.data.audio import MAX_SECONDS, SpecAugment, load_audio
from speechllm.data.errors import DataError
from speechllm.data.features import Featurizer, collate_features
from speechllm.data.instructions import SPLITS, instruction_for, instruction_split_of
from speechllm.data.manifest import ManifestEntry
from speechllm.data.sampler import ItemKey
from speechllm.tasks import TEXT_TASK


class SpeechDataset(Dataset):
    """Loads, featurizes and instructs manifest entries, indexed by :class:`ItemKey`.

    Randomness (template choice, SpecAugment) is seeded by (seed, batch, index), so an item looks
    the same whichever worker loads it and whether or not the run was resumed. Entries of the
    task ``text`` are text-only items: no audio is read (:func:`text_item`).

    Args:
        entries: Validated manifest entries.
        featurizer: The encoder's featurizer.
        seed: Seed for per-item randomness.
        instruction_split: Template split (``"seen"`` for training).
        spec_augment: Masks for log-mel features (training only), or ``None``.
        skip_bad: Return a bad item's :class:`DataError` instead of raising it, so the collator
            can drop and report it.
        item_splits: Prompt a line from its own ``meta.instruction_split`` when it has one
            (evaluation sets only: training always uses seen templates).
        max_seconds: Longest audio an item may read (``too_long`` beyond it); the data module
            passes its ``max_item_seconds``. ``None``: each line's duration bounds its read.
    """

    def __init__(
        self,
        entries: Sequence[ManifestEntry],
        featurizer: Featurizer,
        *,
        seed: int = 0,
        instruction_split: str = "seen",
        spec_augment: SpecAugment | None = None,
        skip_bad: bool = False,
        item_splits: bool = False,
        max_seconds: float | None = MAX_SECONDS,
    ) -> None:
        if instruction_split not in SPLITS:
            raise ValueError(
                f"instruction_split must be one of {SPLITS}, got {instruction_split!r}"
            )
        if spec_augment is not None and not featurizer.is_log_mel:
            raise ValueError("spec_augment needs a log-mel (Whisper) featurizer")
        self.entries = list(entries)
        self.featurizer = featurizer
        self.seed = seed
        self.instruction_split = instruction_split
        self.spec_augment = spec_augment
        self.skip_bad = skip_bad
        self.item_splits = item_splits
        self.max_seconds = max_seconds

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: ItemKey | int) -> dict[str, Any] | DataError:
        index, batch = key if isinstance(key, ItemKey) else (key, 0)
        entry = self.entries[index]
        if entry.task == TEXT_TASK:
            return text_item(entry, self.featurizer)
        item_seed = (self.seed * 1_000_003 + batch) * 1_000_003 + index
        try:
            waveform = load_audio(
                entry.audio,
                self.featurizer.sampling_rate,
                entry.offset,
                entry.duration,
                max_seconds=self.max_seconds,
            )
        except DataError as error:
            located = error.at(entry.source, entry.line)
            if self.skip_bad:
                return located
            raise located from None
        split = self.instruction_split
        if self.item_splits:
            split = instruction_split_of(entry, split)
        return make_item(entry, waveform, self.featurizer, split, self.spec_augment, item_seed)


def make_item(
    entry: ManifestEntry,
    waveform: torch.Tensor,
    featurizer: Featurizer,
    split: str,
    spec_augment: SpecAugment | None,
    item_seed: int,
) -> dict[str, Any]:
    """One item for :func:`collate` from a line and its decoded audio (both training streams,
    in-memory and sharded, build items here)."""
    features, length = featurizer(waveform)
    if spec_augment is not None:
        features = spec_augment(features, length, item_seed)
    return {
        "features": features,
        "length": length,
        "instruction": instruction_for(entry, split, random.Random(item_seed)),
        "target": entry.target,
        "task": entry.task,
        "id": entry.id,
        # lines of one recording (one per task) share it: the encoder cache keys on it
        "audio_key": f"{entry.audio}@{entry.offset}",
        "transcript": str(entry.meta.get("transcript", "")),
    }


def text_item(entry: ManifestEntry, featurizer: Featurizer) -> dict[str, Any]:
    """One text-only item (:mod:`speechllm.data.text_items`): nothing is read or featurized;
    its input is the featurizer's zero-width one, so it collates as an all-zero row of length 0,
    and it keeps its own instruction (``""`` for a continuation)."""
    features, length = featurizer.empty()
    return {
        "features": features,
        "length": length,
        "instruction": entry.instruction or "",
        "target": entry.target,
        "task": entry.task,
        "id": entry.id,
        "audio_key": "",
        "transcript": "",
    }


def collate(items: Sequence[dict[str, Any] | DataError]) -> dict[str, Any]:
    """Build a contract batch, dropping bad items.

    Besides the contract keys the batch has ``bad_items``: the :class:`DataError` of each dropped
    item (the data module pops and counts them). When every item was bad the batch has zero rows
    (``audio`` of shape ``(0,)``); the training step should skip it.
    """
    good = [item for item in items if not isinstance(item, DataError)]
    if good:
        audio, lengths = collate_features([(item["features"], item["length"]) for item in good])
    else:
        audio, lengths = torch.zeros(0), torch.zeros(0, dtype=torch.long)
    return {
        "audio": audio,
        "audio_lengths": lengths,
        "instructions": [item["instruction"] for item in good],
        "targets": [item["target"] for item in good],
        "tasks": [item["task"] for item in good],
        "ids": [item["id"] for item in good],
        "audio_keys": [item["audio_key"] for item in good],
        "transcripts": [item["transcript"] for item in good],
        "bad_items": [item for item in items if isinstance(item, DataError)],
    }
