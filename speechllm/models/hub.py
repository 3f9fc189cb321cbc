"""Export folders on the Hugging Face Hub: fetch one by repo id, push one.

Both go through ``huggingface_hub``, so a model repo behaves like any other Hub model: its
cache (``HF_HUB_CACHE``), token (``HF_TOKEN`` or ``hf auth login``), endpoint
(``HF_ENDPOINT``) and offline mode (``HF_HUB_OFFLINE=1``: served from the cache, or a clear
error) all apply. Only the export's own files travel, and nothing that would be unpickled or
executed (``*.bin``, ``*.pt``, ``*.py``...) is ever fetched or pushed.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
from huggingface_hub.utils import validate_repo_id

EXPORT_FILES = [
    "config.json",
    "trainable.safetensors",
    "adapters/*",
    "tokenizer/*",
    "encoder/*",
    "llm/*",
]
"""What :func:`speechllm.models.pretrained.load` reads (the model card is not needed)."""
NEVER = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt", "*.py"]
"""Files that unpickle or run code: never fetched, never pushed."""


def is_repo_id(name: str) -> bool:
    """``org/name`` as the Hub spells a model repo (a local path that exists is not one)."""
    if "/" not in name or Path(name).exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def export_folder(
    path_or_id: str | Path,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> Path:
    """A local export folder as is, or a repo id's export fetched (arguments as
    :func:`download`)."""
    path = Path(path_or_id)
    if path.is_dir():
        return path
    if not is_repo_id(str(path_or_id)):
        raise FileNotFoundError(f"{path}: expected an export folder, a .ckpt file or a Hub repo id")
    try:
        return download(str(path_or_id), revision, token, cache_dir, local_files_only)
    except (HfHubHTTPError, LocalEntryNotFoundError) as err:
        raise FileNotFoundError(
            f"{path_or_id}: no such local folder, and no export on the Hub by that id: {err}"
        ) from err


def download(
    repo_id: str,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> Path:
    """The export at ``repo_id`` (branch, tag or commit ``revision``) as a cached folder.

    Args:
        repo_id: the model repo, ``org/name``.
        revision: a branch, tag or commit hash; default ``main``.
        token: a Hub token for private or gated repos (default: the logged-in one).
        cache_dir: the Hub cache (default ``HF_HUB_CACHE``).
        local_files_only: use the cache only, as ``HF_HUB_OFFLINE=1`` does.
    """
    folder = snapshot_download(
        repo_id,
        revision=revision,
        token=token,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        allow_patterns=EXPORT_FILES,
        ignore_patterns=NEVER,
        library_name="speechllm",
    )
    return Path(folder)


def push(
    folder: str | Path,
    repo_id: str,
    token: str | bool | None = None,
    private: bool | None = None,
    commit_message: str = "Upload speechllm export",
) -> CommitInfo:
    """Upload an export folder to ``repo_id`` (created if missing) as one commit.

    Args:
        folder: an export folder written by ``save_pretrained`` / ``speechllm-export``.
        repo_id: the model repo, ``org/name``.
        token: a Hub token with write access (default: the logged-in one).
        private: create the repo private (an existing repo keeps its visibility).
        commit_message: the commit's title.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: not an export folder (no config.json)")
    api = HfApi(token=token, library_name="speechllm")
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        commit_message=commit_message,
        allow_patterns=[*EXPORT_FILES, "README.md"],
        ignore_patterns=NEVER,
    )
