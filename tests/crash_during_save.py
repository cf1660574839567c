"""Run ``psamf ARGS...`` and break its Nth training-checkpoint save (a test helper; a script).

Usage: ``python crash_during_save.py MODE N ARGS...``. MODE is how the save breaks:

- ``kill``: the first tensor file of that save is written half, then the process SIGKILLs itself
  (a crash in the middle of a write);
- ``fsize-signal``: RLIMIT_FSIZE drops to 1 MiB and SIGXFSZ gets its default action, so the first
  large write kills the process;
- ``fsize-raise``: the same limit with SIGXFSZ ignored (Python's own setting), so the write fails
  with EFBIG and psamf reports it as an error.

Only the breaking is injected; psamf's own code does all the writing and the reporting.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from pathlib import Path

import psamf.io
from psamf.cli import main
from psamf.training import trainer


def _arm(mode: str) -> None:
    if mode == "kill":
        real = psamf.io.save_file

        def half_then_die(tensors, filename, metadata=None):
            real(tensors, filename, metadata=metadata)
            size = Path(filename).stat().st_size
            os.truncate(filename, size // 2)
            os.kill(os.getpid(), signal.SIGKILL)

        psamf.io.save_file = half_then_die
        return
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN if mode == "fsize-raise" else signal.SIG_DFL)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))


def run(mode: str, at_call: int, argv: list[str]) -> int:
    real = trainer.save_training_checkpoint
    calls = 0

    def save(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == at_call:
            _arm(mode)
        return real(*args, **kwargs)

    trainer.save_training_checkpoint = save
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
