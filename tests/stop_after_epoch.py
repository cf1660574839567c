"""Run ``psamf ARGS...`` and stop it like a Ctrl-C right after epoch K's checkpoint is written
(a test helper; a script, runnable under torchrun). Usage: ``python stop_after_epoch.py K ARGS...``.

Every process stops at the same point, so a DDP run can be stopped deterministically (a signal
would land in different places in different processes); psamf's own code does all the writing.
"""

from __future__ import annotations

import sys

from psamf.cli import main
from psamf.training.trainer import Trainer


def _arm(stop_after: int) -> None:
    save = Trainer._save_checkpoint

    def save_then_stop(self, model, optimizer, scheduler, loop) -> None:
        save(self, model, optimizer, scheduler, loop)
        if loop.epoch == stop_after and loop.step_in_epoch == 0:
            raise KeyboardInterrupt

    Trainer._save_checkpoint = save_then_stop


if __name__ == "__main__":
    _arm(int(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
