"""A callback the DDP test injects: each rank writes its trainable weights at the end."""

from pathlib import Path

import lightning as L
from safetensors.torch import save_file


class DumpTrainable(L.Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in pl_module.model.trainable_state_dict().items()}
        save_file(state, self.out_dir / f"rank{trainer.global_rank}.safetensors")
