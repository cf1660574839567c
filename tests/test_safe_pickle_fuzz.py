"""Seeded mutation fuzz of a valid MMSA pickle: every outcome is data or a one-line InputError.

The base pickle also carries the strings 'posix', 'system' and a shell command that touches a
marker, so mutations that splice them into a STACK_GLOBAL + REDUCE are within reach.
"""

from __future__ import annotations

import pickle
import pickletools
import random
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_data_readers import SIZES, mmsa_split

from psamf.data import load_dataset
from psamf.data.safe_pickle import safe_load
from psamf.errors import InputError

OPCODE_BYTES = [op.code.encode("latin1") for op in pickletools.opcodes]
CASE_SECONDS = 2.0


def base_pickle(marker: Path, protocol: int) -> bytes:
    data = {s: mmsa_split(s, n, aligned=False, t=3) for s, n in SIZES.items()}
    data["notes"] = ["posix", "system", f"touch {marker}"]
    return pickle.dumps(data, protocol=protocol)


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        at = rng.randrange(len(out))
        if kind == 0:  # flip one byte
            out[at] = rng.randrange(256)
        elif kind == 1:  # truncate
            del out[at:]
        elif kind == 2:  # duplicate a slice somewhere else
            piece = out[at:at + rng.randint(1, 64)]
            where = rng.randrange(len(out))
            out[where:where] = piece
        elif kind == 3:  # insert an opcode with random argument bytes
            out[at:at] = rng.choice(OPCODE_BYTES) + rng.randbytes(rng.randint(0, 8))
        else:  # delete a slice
            del out[at:at + rng.randint(1, 16)]
        if not out:
            out = bytearray(b"\x80")
    return bytes(out)


class CaseTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def fire(*_):
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(load, path: Path) -> str:
    """'ok', or the error's class name after checking it is a one-line InputError naming path."""
    try:
        with time_limit(CASE_SECONDS):
            load(path)
    except CaseTimeout:
        pytest.fail(f"{path.name}: no result within {CASE_SECONDS} s")
    except InputError as err:
        message = str(err)
        assert str(path) in message and "\n" not in message, message
        return type(err).__name__
    except Exception as err:  # anything else is a bug: name the case to replay it
        pytest.fail(f"{path.name}: {type(err).__name__} escaped: {err}")
    return "ok"


@pytest.mark.parametrize(("protocol", "cases"), [(4, 2000), (2, 1000)])
def test_mutated_pickles_load_or_fail_cleanly(tmp_path, protocol, cases):
    marker = tmp_path / "MARKER"
    data = base_pickle(marker, protocol)
    rng = random.Random(1234 + protocol)
    before = set(sys.modules)
    seen: dict[str, int] = {}
    for case in range(cases):
        path = tmp_path / f"case{case}.pkl"
        path.write_bytes(mutate(data, rng))
        kind = outcome(safe_load, path)
        seen[kind] = seen.get(kind, 0) + 1
        path.unlink()
    assert not marker.exists()
    # Only codecs the unpickler itself looks up (protocol 0 text) may be imported.
    assert all(name.startswith("encodings.") for name in set(sys.modules) - before)
    # The fuzz reaches both sides: some mutants still load, most are refused or unreadable.
    assert seen.get("ok", 0) > 0 and seen.get("InputError", 0) > cases // 4, seen


def test_mutated_feature_folders_load_or_fail_cleanly(tmp_path):
    """Through load_dataset: the readers' own validation must stay in the error family too."""
    marker = tmp_path / "MARKER"
    data = base_pickle(marker, 4)
    rng = random.Random(99)
    folder = tmp_path / "ds"
    folder.mkdir()
    seen: dict[str, int] = {}
    for case in range(300):
        path = folder / "unaligned_50.pkl"
        path.write_bytes(mutate(data, rng))
        kind = outcome(lambda p: load_dataset(p.parent), path)
        seen[kind] = seen.get(kind, 0) + 1
        assert case >= 0
    assert not marker.exists()
    assert seen.get("ok", 0) > 0, seen
