"""Where a result came from: the git commit of the psamf code that produced it, and the machine
it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def git_commit(path: str | Path | None = None) -> str:
    """HEAD of the checkout holding ``path`` (default: this package's source), ``+dirty`` appended
    when tracked files under the checkout's ``src/`` differ from it; ``"unknown"`` outside a
    checkout or without git."""
    where = str(path if path is not None else _HERE)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", where, *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":(top)src")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def machine(moment: str = "at start") -> str:
    """One line for a result file: CPU cores and model, GPU, and the load average at ``moment``
    (timings on a shared machine mean little without it)."""
    import torch  # lazy: git_commit() alone should not pay for importing torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), {gpu}, "
            f"load average {moment} {load}")
