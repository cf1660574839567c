"""What each ``psamf train`` call on a run folder cost and ran: ``run.json``'s ``sessions`` list.

A run may take several calls (``--resume`` after a kill); each finished call appends one entry:
the command, the code's git commit, the device, the number of processes (``world_size``, DDP),
wall seconds, the peak memory it reached (process resident set; CUDA allocator peak when on a
GPU; rank 0's under DDP), torch's thread count and the machine's load average at start and end (a
shared machine's timings are read against it). Interrupted calls are not recorded: their time
shows in the per-epoch seconds of ``metrics.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from psamf.io import write_json
from psamf.provenance import git_commit


def peak_memory_mib() -> dict[str, float]:
    """Peak resident memory of this process, and the CUDA allocator's peak when CUDA was used
    (MiB); an entry is absent where the platform cannot tell."""
    out: dict[str, float] = {}
    try:
        import resource  # POSIX only
    except ImportError:  # pragma: no cover - Windows
        resource = None
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        out["rss"] = round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the platform has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def record_session(
    folder: str | Path, *, command: str, started: float, resumed: bool, device: str,
    load_at_start: list[float] | None = None, world_size: int = 1,
) -> dict[str, Any]:
    """Append this call's entry to ``folder/run.json`` (``started``: its ``time.time()``;
    ``load_at_start``: ``load_average()`` then; ``world_size``: DDP processes, rank 0's memory
    and threads stand for each)."""
    import torch

    path = Path(folder) / "run.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    entry = {
        "command": command,
        "git_commit": git_commit(),
        "resumed": resumed,
        "device": device,
        "world_size": world_size,
        "wall_seconds": round(time.time() - started, 1),
        "peak_memory_mib": peak_memory_mib(),
        "threads": torch.get_num_threads(),
        "load_average": {"start": load_at_start, "end": load_average()},
    }
    info.setdefault("sessions", []).append(entry)
    write_json(path, info)
    return entry
