"""Reading pickles that users bring without running code from them.

A pickle can name any importable callable and have it called while loading. The research formats we
read (MMSA feature pickles, the PSA-MF authors' pickles, ChaLearn's Python 2 annotation pickles)
only ever need plain containers, numbers, strings and numpy arrays. ``safe_load`` therefore

1. checks the whole file first, opcode by opcode (``pickletools.genops``, which never executes
   anything): opcodes that reach code or objects outside the data (persistent ids, the copyreg
   extension registry, INST / OBJ / NEWOBJ, out-of-band buffers) are refused; every global, named
   by GLOBAL or by STACK_GLOBAL from string literals, must be one exact ``(module, name)`` pair of
   the allow-list in ``_pickle_allowlist``; declared lengths, frames and memo indices must fit in
   the file (the C unpickler allocates a declared length, or a memo of twice a PUT index, before
   it reads anything); nothing may follow the pickle's STOP;
2. then unpickles with ``find_class`` returning only the allow-list's wrappers, which check their
   arguments and never hand a real callable or class to the unpickler, and a ``persistent_load``
   that refuses;
3. then swaps the wrappers' numpy stubs for real arrays and dtypes and refuses anything else
   (``_pickle_allowlist.resolve``).

Every failure is an ``InputError`` naming the file: ``UnsafePickleError`` for what is refused,
"not a readable pickle" for what is corrupt.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings
from pathlib import Path
from typing import Any

from psamf.data._pickle_allowlist import (
    MAX_KEY_INT_BITS,
    MAX_KEY_TUPLE,
    Refused,
    admitted,
    resolve,
)
from psamf.errors import InputError, NotFoundError


class UnsafePickleError(InputError):
    """A pickle asked for a global, an opcode or an argument outside the allow-list."""


class _Unreadable(Exception):
    """Corrupt or truncated data found by the opcode check."""


# Opcodes that reach objects or code beyond plain data. INST / OBJ / NEWOBJ / NEWOBJ_EX
# instantiate a class directly (bypassing the wrappers' argument checks); EXT1/2/4 fetch globals
# from copyreg's process-wide extension registry and cache (a cached entry is returned without
# find_class); PERSID / BINPERSID hand an id to application code; NEXT_BUFFER / READONLY_BUFFER
# take out-of-band buffers, which files never carry.
_REFUSED_OPCODES = frozenset({
    "PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX",
    "NEXT_BUFFER", "READONLY_BUFFER",
})
_STRING_OPCODES = frozenset({
    "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "STRING", "BINSTRING", "SHORT_BINSTRING",
})
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
_UNKNOWN = object()  # a stack value the check does not track (never a tuple, see _apply)
# Stack values that must not be dict keys or set elements (``_pickle_allowlist.cheap_key`` says
# why): an int too long to hash cheaply, a tuple too long or holding a tuple / such an int.
_COSTLY_KEY = object()
_SHORT_TUPLE = object()  # a tuple that hashes cheaply
_INT_OPCODES = frozenset({"INT", "LONG", "LONG1", "LONG4"})
_TUPLE_SIZES = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_KEYED = frozenset({"SETITEM", "SETITEMS", "ADDITEMS", "FROZENSET"})


def _check_global(module: str, name: str) -> None:
    if admitted(module, name) is None:
        raise Refused(f"refused global '{module}.{name}'")


def _scan_one(stream: io.BytesIO, size: int) -> None:
    """Check one pickle from the stream's position to its STOP (see the module docstring).

    A symbolic stack follows pickletools' declared stack effects with only string literals
    tracked, so that STACK_GLOBAL's names are known before anything runs.
    """
    stack: list[Any] = []
    metastack: list[list[Any]] = []
    memo: dict[int, Any] = {}
    memo_writes = 0
    try:
        for op, arg, pos in pickletools.genops(stream):
            name = op.name
            if name in _REFUSED_OPCODES:
                raise Refused(f"refused opcode {name} at byte {pos}")
            if name == "FRAME" and arg > size - stream.tell():
                raise _Unreadable(f"frame of {arg} bytes at byte {pos} runs past the end")
            if name == "PROTO" and arg > pickle.HIGHEST_PROTOCOL:
                raise _Unreadable(f"unsupported protocol {arg}")
            if name in _MEMO_PUT:
                # Writers number memo entries 0, 1, 2, ...; a larger index only makes the C
                # unpickler allocate a memo of twice that size.
                if arg > memo_writes:
                    raise Refused(f"refused opcode {name} at byte {pos}: memo index {arg} with "
                                  f"only {memo_writes} entries before it")
                if not stack:
                    raise _Unreadable(f"{name} on an empty stack at byte {pos}")
                memo[arg] = stack[-1]
                memo_writes += 1
                continue
            if name == "MEMOIZE":
                if not stack:
                    raise _Unreadable(f"MEMOIZE on an empty stack at byte {pos}")
                memo[len(memo)] = stack[-1]
                memo_writes += 1
                continue
            if name in _MEMO_GET:
                if arg not in memo:
                    raise _Unreadable(f"{name} of memo index {arg} never stored, at byte {pos}")
                stack.append(memo[arg])
                continue
            if name == "GLOBAL":
                module, _, gname = arg.partition(" ")
                _check_global(module, gname)
            if name == "STACK_GLOBAL":
                names = stack[-2:]
                if len(names) < 2 or not all(type(n) is str for n in names):
                    raise Refused(f"refused opcode STACK_GLOBAL at byte {pos}: its module and "
                                  "name are not string literals")
                _check_global(*names)
            if name == "MARK":
                metastack.append(stack)
                stack = []
                continue
            if name == "DUP":
                if not stack:
                    raise _Unreadable(f"DUP on an empty stack at byte {pos}")
                stack.append(stack[-1])
                continue
            if name in _KEYED:
                _check_keys(name, stack, pos)
            if name in _TUPLE_SIZES or name == "TUPLE":
                items = stack if name == "TUPLE" else stack[len(stack) - _TUPLE_SIZES[name]:]
                cheap = len(items) <= MAX_KEY_TUPLE and all(
                    v is not _SHORT_TUPLE and v is not _COSTLY_KEY for v in items)
            stack = _apply(op, stack, metastack, pos)
            if name in _STRING_OPCODES:
                stack[-1] = arg
            elif name in _TUPLE_SIZES or name == "TUPLE":
                stack[-1] = _SHORT_TUPLE if cheap else _COSTLY_KEY
            elif name in _INT_OPCODES and type(arg) is int and arg.bit_length() > MAX_KEY_INT_BITS:
                stack[-1] = _COSTLY_KEY
    except ValueError as err:  # genops: unknown opcode, truncated argument, bad literal
        raise _Unreadable(str(err)) from None


def _check_keys(name: str, stack: list[Any], pos: int) -> None:
    """Refuse dict keys / set elements that are costly to hash (before anything hashes them)."""
    if name == "SETITEM":
        keys = stack[-2:-1]
    elif name == "SETITEMS":
        keys = stack[0::2]  # the items since the MARK: key, value, key, value, ...
    else:
        keys = stack
    if any(k is _COSTLY_KEY for k in keys):
        raise Refused(f"refused opcode {name} at byte {pos}: a dict key or set element that is "
                      f"not a plain scalar or a short tuple of scalars (at most {MAX_KEY_TUPLE}); "
                      "hashing it could take practically forever")


def _apply(op: pickletools.OpcodeInfo, stack: list[Any], metastack: list[list[Any]],
           pos: int) -> list[Any]:
    """The stack after an opcode's declared effect (pops, then pushes of untracked values)."""
    before = op.stack_before
    if pickletools.markobject in before:
        if not metastack:
            raise _Unreadable(f"{op.name} without a MARK at byte {pos}")
        stack = metastack.pop()
        below = before.index(pickletools.markobject)
    else:
        below = len(before)
    if len(stack) < below:
        raise _Unreadable(f"{op.name} on a stack too short at byte {pos}")
    del stack[len(stack) - below:]
    stack.extend(_UNKNOWN for _ in op.stack_after)
    return stack


def _scan(data: bytes) -> None:
    """Check the file's pickle; anything after its STOP is refused or reported."""
    stream = io.BytesIO(data)
    with warnings.catch_warnings():  # pickletools warns on bad escapes; the unpickler will too
        warnings.simplefilter("ignore", DeprecationWarning)
        _scan_one(stream, len(data))
    end = stream.tell()
    if end == len(data):
        return
    try:  # a payload hidden after the data: name what it asks for
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            while stream.tell() < len(data):
                _scan_one(stream, len(data))
    except _Unreadable:
        pass
    raise _Unreadable(f"{len(data) - end} bytes follow the pickle's end at byte {end}; psamf "
                      "reads files that hold exactly one pickle")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        wrapper = admitted(module, name)
        if wrapper is None:
            raise Refused(f"refused global '{module}.{name}'")
        return wrapper

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("refused a persistent id")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def safe_load(path: str | Path, *, encoding: str = "ASCII") -> Any:
    """Load a pickle file admitting only plain data (see module docstring).

    ``encoding="latin1"`` reads Python 2 pickles with numpy content (ChaLearn's files).
    Errors name the file: missing file, truncated or corrupt data, refused globals.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        _scan(data)
        return resolve(_RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load())
    except Refused as err:
        raise UnsafePickleError(
            f"{path}: {_one_line(str(err))}. psamf only reads pickles made of plain containers, "
            "numbers, strings and numpy arrays; this file asks for more, which could run "
            "arbitrary commands. Re-export the data with plain types (dicts, lists, numpy "
            "arrays) if you trust its origin."
        ) from None
    except Exception as err:  # corrupt data surfaces as many types; the file is at fault
        what = str(err) if isinstance(err, _Unreadable) else f"{type(err).__name__}: {err}"
        raise InputError(
            f"{path}: not a readable pickle ({_one_line(what)}); the "
            "file may be truncated or corrupt, re-download or re-export it"
        ) from None
