"""Where a result came from: the git commit of the psamf code that produced it."""

from __future__ import annotations

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
