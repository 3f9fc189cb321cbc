"""A callback the sharded-stream DDP test injects: each rank appends the ids of every batch."""

from pathlib import Path
from typing import Any

import lightning as L


class DumpBatches(L.Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / f"rank{trainer.global_rank}.tsv", "a") as f:
            f.write(f"{trainer.global_step}\t{','.join(batch['ids'])}\n")
