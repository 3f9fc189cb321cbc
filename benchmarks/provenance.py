"""What a committed result records beside its figures: the command that made it, when, at which
commit, on what machine. A README figure is quoted from such a file, and a test keeps the two
equal; without these four a figure cannot be audited or made again.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def provenance(script: str, argv: list[str]) -> dict[str, str]:
    """``command``, ``date`` (UTC), ``commit`` (``+uncommitted changes`` when the tree differs
    from it) and ``machine`` (cores, processor, load average as the run starts) of a run of
    ``script`` (a path from the repository root) with ``argv``."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " +uncommitted changes"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "command": shlex.join(["python", script, *argv]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"load average {load:.1f} at start",
    }
