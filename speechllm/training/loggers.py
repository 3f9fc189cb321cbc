"""The TensorBoard and W&B loggers of ``conf/logger/``: Lightning's, saying which extra brings
their package before a run starts, and the W&B one tied to its run folder.

Lightning's loggers find a missing package only when the trainer is built, after both models,
and raise a multi-line ``ModuleNotFoundError``. The config checks (``speechllm.config``) ask
each logger class's ``missing_extra()`` first, so ``logger=tensorboard`` without its package
fails in a second, in one line naming ``pip install 'speechllm[tensorboard]'``.

TensorBoard: Lightning writes through ``torch.utils.tensorboard`` when the ``tensorboard``
package is installed, else through ``tensorboardX``. The extra brings tensorboardX (it needs
only numpy and protobuf; ``tensorboard`` brings a web server, grpcio and a binary data server),
and the event files are the same. The viewer goes wherever you look at them: ``pip install
tensorboard``, then ``tensorboard --logdir runs``.

W&B: a W&B run is known by its id, and Lightning's logger asks W&B for a new one at each start,
so a preempted run that resumes (``resume=auto``) would log into a second W&B run. Here the id
belongs to the run folder: made at its first start, kept in ``<run>/wandb/run_id``, and
continued with ``resume="allow"``. Offline (the preset's default), each start writes its own
``wandb/offline-run-*`` folder under that id, and ``wandb sync`` uploads them, in order, into
one run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import string
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, ClassVar

from lightning.pytorch import loggers

RUN_ID_FILE = Path("wandb") / "run_id"
"""Where a run folder keeps its W&B run id, relative to the logger's ``save_dir``."""


class _NeedsExtra:
    """A logger whose package comes with one of speechllm's extras."""

    extra: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]  # any one of them will do

    @classmethod
    def missing_extra(cls) -> str | None:
        """Why this logger cannot log here (none of its packages is installed), in one line
        naming the extra to install; ``None`` when it can."""
        if any(_installed(p) for p in cls.packages):
            return None
        return (
            f"{cls.__name__} needs {' or '.join(cls.packages)}, which is not installed: "
            f"pip install 'speechllm[{cls.extra}]'"
        )


class TensorBoardLogger(_NeedsExtra, loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger; the ``tensorboard`` extra brings tensorboardX."""

    extra = "tensorboard"
    packages = ("tensorboardX", "tensorboard")  # either writes the event files


class WandbLogger(_NeedsExtra, loggers.WandbLogger):
    """Lightning's W&B logger, continuing its run folder's W&B run.

    Args:
        save_dir: the run folder; W&B writes under ``<save_dir>/wandb/``.
        id: the W&B run id; ``None`` takes the run folder's (:func:`run_id`).
        resume: W&B's ``resume``: ``"allow"`` continues the run of that id if there is one.
        **kwargs: the rest of Lightning's ``WandbLogger`` (``project``, ``name``, ``offline``...).
    """

    extra = "wandb"
    packages = ("wandb",)

    def __init__(
        self, save_dir: str = ".", id: str | None = None, resume: str = "allow", **kwargs: Any
    ) -> None:
        if id is None and kwargs.get("version") is None:
            id = run_id(save_dir)
        super().__init__(save_dir=save_dir, id=id, resume=resume, **kwargs)
        if self._wandb_init.get("anonymous") is None:  # W&B warns about the key, even unset
            del self._wandb_init["anonymous"]


def run_id(run_dir: str | Path) -> str:
    """The W&B run id of ``run_dir``: read from ``run_dir/wandb/run_id``, made there if absent.

    Every rank of a DDP run calls this at once; the file is linked into place whole and only if
    absent, so all of them read the one id that won.
    """
    path = Path(run_dir) / RUN_ID_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        alphabet = string.ascii_lowercase + string.digits  # what W&B's own ids use
        made = "".join(secrets.choice(alphabet) for _ in range(8))
        tmp = path.with_name(f".run_id.{os.getpid()}.{made}")
        tmp.write_text(made + "\n")
        try:
            with contextlib.suppress(FileExistsError):  # another rank was first
                os.link(tmp, path)
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _installed(package: str) -> bool:
    # the installed distribution, not find_spec: a ./wandb/ folder of run files is not W&B
    try:
        distribution(package)
    except PackageNotFoundError:
        return False
    return True
