"""Shared test fixtures (keep small)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from psamf.data import DATA_ROOT_ENV

# The real corpora: $PSAMF_DATA_ROOT as psamf reads it, else ../shared/data beside the checkout.
SHARED_DATA = Path(os.environ.get(DATA_ROOT_ENV) or
                   Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Torch on one thread for the whole suite: tiny models on a shared 2-core machine (and CI)
    run far faster without intra-op threads competing."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shared_data() -> Callable[..., Path]:
    """``shared_data("mosi", ...)``: the data root holding those corpora; skips the test, naming
    what is missing, when any of them is absent."""

    def root(*corpora: str) -> Path:
        missing = [c for c in corpora if not (SHARED_DATA / c).is_dir()]
        if missing or not SHARED_DATA.is_dir():
            pytest.skip(f"real data not found: {', '.join(missing) or 'the folder'} under "
                        f"{SHARED_DATA} (see ../shared/data/README.md; set {DATA_ROOT_ENV})")
        return SHARED_DATA

    return root


def psamf_command(*args: str) -> list[str]:
    """The psamf CLI as a subprocess command line (this interpreter, this checkout)."""
    return [sys.executable, "-m", "psamf", *args]


def signal_in_second_epoch(proc: subprocess.Popen, run: Path, sig: int,
                           *, timeout_s: float = 120) -> dict | None:
    """Send ``sig`` to a ``psamf train`` subprocess once seed 0's checkpoint shows it inside its
    second epoch; return that loop state (None if the run ended first). Waits for the process."""
    state = run / "seed-0" / "checkpoint" / "state.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            loop = json.loads(state.read_text())["loop"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            time.sleep(0.01)
            continue
        if loop["epoch"] >= 1 and loop["step_in_epoch"] >= 1:
            proc.send_signal(sig)
            proc.wait(timeout=60)
            return loop
        time.sleep(0.01)
    proc.wait(timeout=60)
    return None
