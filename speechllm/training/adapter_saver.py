"""SaveAdapters: write named adapters as standard peft folders when training ends.

Step one of two-step PEFT ends with a domain adapter that step two loads by path
(``llm.adapter_paths``), so it is written where a config can point at it, in the format
peft and other tools read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from speechllm.models.llm import LLM

log = logging.getLogger(__name__)


class SaveAdapters(L.Callback):
    """Writes ``dirpath/<name>/`` (``adapter_config.json`` + safetensors) for each adapter.

    Works with any module that holds its :class:`LLM` as ``llm`` (``TextLMModule``) or
    ``model.llm`` (``SpeechLLMModule``).

    Args:
        names: adapters to save.
        dirpath: parent folder.
    """

    def __init__(self, names: list[str], dirpath: str) -> None:
        self.names = list(names)
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        llm = getattr(pl_module, "llm", None) or pl_module.model.llm
        if not isinstance(llm, LLM):
            raise TypeError("SaveAdapters needs a module with an LLM at .llm or .model.llm")
        for name in self.names:
            path = llm.save_adapter(name, self.dirpath / name)
            log.info("saved adapter %r to %s", name, path)
