"""What each ``psamf train`` call on a run folder cost and ran: ``run.json``'s ``sessions`` list.

A run may take several calls (``--resume`` after a stop). Each call appends its entry as soon as
the run folder is complete (a new run's once its data is prepared and the folder made; a resumed
one's before it reads its data) and keeps it current while it runs (every epoch end, at most a
minute apart while it trains, and on exit), so a call that never finishes still counts; its
wall time runs from ``psamf.cli.main``'s start. ``status``: ``finished``; ``interrupted``
(Ctrl-C or SIGTERM, ``exit_status`` 130 or 143; the run resumes from its last checkpoint);
``failed`` (an error, ``exit_status`` 2 for a user error); or ``running`` (the call is still
going, or was killed outright, SIGKILL or out of memory, and its figures are those of its last
update).

An entry holds: the command, the code's git commit when the call started, when it started (UTC),
the device, the number of processes (``world_size``, DDP), wall seconds, the peak memory it
reached (process resident set; CUDA allocator peak when on a GPU; rank 0's under DDP), torch's
thread count and the machine's load average at start and at the last update (a shared machine's
timings are read against it). Folders written before entries were kept current list finished
calls only, without ``started`` and ``status``.
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

# While it trains, the entry is rewritten at most this often (seconds): a call killed outright
# mid-epoch loses at most this much of its wall time (one inside validation or test, the time
# since the last update), at the cost of one small file write a minute.
UPDATE_EVERY_S = 60.0


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


class Session:
    """This call's entry in ``folder/run.json``: appended on construction (``status`` running),
    rewritten by ``save`` (each epoch end and on exit) and ``tick`` (after every step; it writes
    at most every ``UPDATE_EVERY_S``). ``started``: the call's ``time.time()``; ``load_at_start``:
    ``load_average()`` then; ``world_size``: DDP processes, rank 0's memory and threads stand for
    each."""

    def __init__(self, folder: str | Path, *, command: str, started: float, resumed: bool,
                 device: str, load_at_start: list[float] | None = None,
                 world_size: int = 1) -> None:
        import torch

        self.path = Path(folder) / "run.json"
        self.started = started
        self.index = len(self._read().get("sessions", []))
        self.entry: dict[str, Any] = {
            "command": command,
            "git_commit": git_commit(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "status": "running",
            "exit_status": None,
            "resumed": resumed,
            "device": device,
            "world_size": world_size,
            "wall_seconds": 0.0,
            "peak_memory_mib": {},
            "threads": torch.get_num_threads(),
            "load_average": {"start": load_at_start, "end": None},
        }
        self.save()

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}

    def save(self, status: str | None = None, exit_status: int | None = None) -> dict[str, Any]:
        """Bring the entry up to date (``status``, ``exit_status``: how the call ended) and
        rewrite it in run.json (atomically; the file's other keys are kept as they are)."""
        if status is not None:
            self.entry.update(status=status, exit_status=exit_status)
        self.entry.update(wall_seconds=round(time.time() - self.started, 1),
                          peak_memory_mib=peak_memory_mib())
        self.entry["load_average"]["end"] = load_average()
        info = self._read()
        sessions = info.setdefault("sessions", [])
        sessions[self.index:self.index + 1] = [self.entry]
        write_json(self.path, info)
        self._saved_at = time.monotonic()
        return self.entry

    def tick(self, _step: int = 0) -> None:
        """``save`` if the last one was ``UPDATE_EVERY_S`` ago (a training step's callback)."""
        if time.monotonic() - self._saved_at >= UPDATE_EVERY_S:
            self.save()
