"""TextDataModule: batches of sentences from plain-text corpora (one sentence per line)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader


def read_lines(path: str | Path) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 text file."""
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path}: no text lines")
    return lines


class TextDataModule(L.LightningDataModule):
    """Shuffled training batches (seeded) and ordered validation batches of raw strings.

    Args:
        train_file: training corpus.
        val_file: validation corpus, if any.
        batch_size: sentences per batch.
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
