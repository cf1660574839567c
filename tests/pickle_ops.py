"""Assemble pickles opcode by opcode, so tests hold exactly the bytes a hostile file would.

Each helper returns the bytes of one opcode (or a short fixed sequence); ``call`` and ``build``
follow what pickle itself writes for ``__reduce__`` results.
"""

from __future__ import annotations

import struct

MARK, STOP, POP, DUP = b"(", b".", b"0", b"2"
TUPLE, EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"t", b")", b"\x85", b"\x86", b"\x87"
EMPTY_LIST, APPEND, APPENDS, LIST = b"]", b"a", b"e", b"l"
EMPTY_DICT, SETITEM, SETITEMS = b"}", b"s", b"u"
REDUCE, BUILD, NEWOBJ, NEWOBJ_EX, STACK_GLOBAL = b"R", b"b", b"\x81", b"\x92", b"\x93"
NONE, NEWTRUE, NEWFALSE, MEMOIZE = b"N", b"\x88", b"\x89", b"\x94"
BINPERSID = b"Q"


def proto(n: int = 4) -> bytes:
    return b"\x80" + bytes([n])


def text(s: str) -> bytes:
    """BINUNICODE: a str of any length."""
    raw = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def short_text(s: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4)."""
    raw = s.encode("utf-8")
    return b"\x8c" + bytes([len(raw)]) + raw


def binbytes(b: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(b)) + b


def binstring(b: bytes | str) -> bytes:
    """SHORT_BINSTRING: a Python 2 str (read back as text with encoding='latin1')."""
    raw = b.encode("latin1") if isinstance(b, str) else b
    return b"U" + bytes([len(raw)]) + raw


def integer(n: int) -> bytes:
    """BININT1 / BININT / LONG1, whichever fits."""
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    """GLOBAL 'module name' (protocols 0-3)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_glob(module: str, name: str) -> bytes:
    """STACK_GLOBAL from two string literals (protocol 4)."""
    return short_text(module) + short_text(name) + STACK_GLOBAL


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def long_binput(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def lst(*items: bytes) -> bytes:
    return EMPTY_LIST + (MARK + b"".join(items) + APPENDS if items else b"")


def call(fn: bytes, *args: bytes) -> bytes:
    """fn(*args) via REDUCE; ``fn`` and each arg are opcode sequences pushing one value."""
    return fn + tup(*args) + REDUCE


def pickle_of(*body: bytes, protocol: int = 4) -> bytes:
    return proto(protocol) + b"".join(body) + STOP


def ext(code: int) -> bytes:
    """EXT1 / EXT2 / EXT4: a global from copyreg's extension registry."""
    if code < 256:
        return b"\x82" + bytes([code])
    if code < 65536:
        return b"\x83" + struct.pack("<H", code)
    return b"\x84" + struct.pack("<i", code)


def inst(module: str, name: str, *args: bytes) -> bytes:
    """INST: MARK args INST 'module name' (protocol 0 instance of a class)."""
    return MARK + b"".join(args) + b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def obj(cls: bytes, *args: bytes) -> bytes:
    """OBJ: MARK cls args OBJ (protocol 1)."""
    return MARK + cls + b"".join(args) + b"o"


def persid(pid: str) -> bytes:
    return b"P" + pid.encode() + b"\n"


def counted(opcode: bytes, fmt: str, length: int) -> bytes:
    """A length-prefixed opcode that declares ``length`` bytes and carries none of them."""
    return opcode + struct.pack(fmt, length)


def frame(length: int) -> bytes:
    return b"\x95" + struct.pack("<Q", length)
