"""Where a published figure came from: the command, the date, the commit and the machine.

Every table in a README is generated from a committed results JSON; the scripts that write
those files (recipes, benchmarks) stamp them with this, so a figure can be traced to the run.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def provenance(script: str, argv: Sequence[str] | None = None) -> dict[str, str]:
    """``command`` (``python <script> <argv>``, default this process's arguments), UTC ``date``,
    the checkout's ``commit`` (``""`` outside git) and ``machine`` (cores and CPU)."""
    args = sys.argv[1:] if argv is None else argv
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=Path(script).resolve().parent if Path(script).exists() else None,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "command": " ".join(["python", script, *args]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": f"{os.cpu_count()} cores, {cpu_name()}",
    }
