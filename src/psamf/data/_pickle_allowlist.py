"""The only globals a pickle read by ``safe_load`` may name, each wrapped to admit safe arguments.

A pickle reaches code only through the globals it names: the unpickler calls them (REDUCE) and
calls ``__setstate__`` on what they return (BUILD). So no real callable is ever handed out here.
Each admitted ``(module, name)`` maps to an ``_Admitted`` wrapper that checks the argument shapes
the real writers produce and refuses anything else (never an allocation larger than the data the
file holds). numpy's arrays and dtypes are built in two steps (a constructor, then BUILD with the
state); numpy's own ``__setstate__`` accepts states that read memory out of bounds (a field offset
past the itemsize) or allocate what the file does not hold (an object array of 10^11 elements), so
the wrappers return stubs whose ``__setstate__`` validates the state and rebuilds the real object
through numpy's public constructors; ``resolve`` then swaps the stubs for the real objects.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.multiarray import scalar as _np_scalar
    from numpy._core.numeric import _frombuffer as _np_frombuffer
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.multiarray import scalar as _np_scalar
    from numpy.core.numeric import _frombuffer as _np_frombuffer

_MAX_DIMS = 64  # numpy 2's NPY_MAXDIMS; a longer shape is corrupt or hostile
_LATIN1 = ("latin1", "latin-1")  # what Python 3 writes for bytes at protocol <= 2


class Refused(Exception):
    """Raised while unpickling; ``safe_load`` makes it an UnsafePickleError naming the file."""


class _Admitted:
    """An admitted global: callable with checked arguments, immutable, refuses BUILD."""

    __slots__ = ("qualname", "_call")

    def __init__(self, qualname: str, call: Callable[..., Any] | None) -> None:
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "_call", call)

    def __call__(self, *args: Any) -> Any:
        if self._call is None:
            raise Refused(f"refused to call '{self.qualname}' (it is only admitted as an argument)")
        return self._call(self.qualname, *args)

    def __setattr__(self, name: str, value: Any) -> None:
        raise Refused(f"refused to set attribute '{name}' on global '{self.qualname}'")

    def __setstate__(self, state: Any) -> None:  # BUILD on a global
        raise Refused(f"refused BUILD on global '{self.qualname}'")

    def __repr__(self) -> str:
        return f"<admitted global {self.qualname}>"


def _bad(qualname: str, why: str) -> Refused:
    return Refused(f"refused call to '{qualname}': {why}")


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_flag(value: Any) -> bool:
    return type(value) is bool or (type(value) is int and value in (0, 1))


def _raw_bytes(value: Any, what: str, qualname: str) -> bytes | bytearray:
    """Raw buffer contents; a Python 2 string read with encoding='latin1' arrives as str."""
    if type(value) is str:
        try:
            return value.encode("latin1")
        except UnicodeEncodeError:
            raise _bad(qualname, f"{what} is text beyond latin-1, not raw bytes") from None
    if type(value) not in (bytes, bytearray):
        raise _bad(qualname, f"{what} is a {type(value).__name__}, not bytes")
    return value


def _shape(value: Any, qualname: str) -> tuple[int, ...]:
    if type(value) is not tuple or len(value) > _MAX_DIMS:
        raise _bad(qualname, f"shape {value!r:.60} is not a tuple of at most {_MAX_DIMS} ints")
    if not all(_is_int(d) and d >= 0 for d in value):
        raise _bad(qualname, f"shape {value!r:.60} has a negative or non-integer dimension")
    return value


# ----------------------------------------------------------------------------- numpy dtypes

# What numpy writes as the first argument of dtype(...): a kind letter and an item size ('f4',
# 'i8', 'O8', 'U5', 'V12', 'M8', 'b1'). Structure (fields, byte order, units) comes in the state.
_DTYPE_SPEC = re.compile(r"[?a-zA-Z]\d{0,10}")
_DATETIME_UNIT = re.compile(r"[a-zA-Z]{1,2}")


class _DTypeStub:
    """What ``numpy.dtype(spec, align, copy)`` returns here; BUILD completes it."""

    __slots__ = ("base", "done")
    __hash__ = None  # type: ignore[assignment]  # so a stub can never hide in a dict key or set

    def __init__(self, base: np.dtype) -> None:
        self.base = base
        self.done: np.dtype | None = None

    def __setstate__(self, state: Any) -> None:
        if self.done is not None:
            raise Refused("refused a second BUILD on one numpy dtype")
        self.done = _build_dtype(self.base, state)

    def final(self) -> np.dtype:
        return self.done if self.done is not None else self.base


def _dtype(qualname: str, *args: Any) -> _DTypeStub:
    if not 1 <= len(args) <= 3 or not all(_is_flag(a) for a in args[1:]):
        raise _bad(qualname, "expected (spec, align, copy) with flags for align and copy")
    spec = args[0]
    if type(spec) is not str or not _DTYPE_SPEC.fullmatch(spec):
        raise _bad(qualname, f"dtype spec {spec!r:.40} is not a kind letter and a size")
    base = np.dtype(spec)
    if base.fields is not None or base.subdtype is not None:
        raise _bad(qualname, f"dtype spec {spec!r} is not a plain dtype")
    return _DTypeStub(base)


def _dtype_arg(value: Any, qualname: str) -> np.dtype:
    if isinstance(value, _DTypeStub):
        return value.final()
    raise _bad(qualname, f"expected a numpy dtype, got a {type(value).__name__}")


def _build_dtype(base: np.dtype, state: Any) -> np.dtype:
    """The dtype numpy's state describes, rebuilt through numpy's validating constructors."""
    where = f"numpy.dtype('{base.str}') state"
    if type(state) is not tuple or (state[:1], len(state)) not in (((3,), 8), ((4,), 9)):
        raise Refused(f"refused {where}: not a version 3 or 4 dtype state")
    byteorder, subarray, names, fields, elsize, alignment, flags = state[1:8]
    if byteorder not in ("<", ">", "|", "=") or subarray is not None:
        raise Refused(f"refused {where}: byte order {byteorder!r:.10} or a sub-array dtype")
    if not (_is_int(elsize) and _is_int(alignment) and _is_int(flags)):
        raise Refused(f"refused {where}: item size, alignment and flags must be ints")
    # numpy derives alignment and flags itself when the dtype is rebuilt below; a claimed item
    # size other than the spec's is never written by numpy and would change how bytes are read.
    if elsize not in (-1, base.itemsize):
        raise Refused(f"refused {where}: item size {elsize} differs from the spec's")
    extra = state[8] if len(state) == 9 else None
    if names is None and fields is None:
        dtype = _datetime(base, extra, where) if base.kind in "mM" else base
        if extra is not None and base.kind not in "mM":
            raise Refused(f"refused {where}: metadata is not supported")
        return dtype.newbyteorder(byteorder) if byteorder in "<>" else dtype
    if base.kind != "V" or extra is not None:
        raise Refused(f"refused {where}: fields on a non-void dtype, or metadata")
    return _structured(base, names, fields, where)


def _datetime(base: np.dtype, extra: Any, where: str) -> np.dtype:
    # numpy writes (metadata, (unit, count, 1, 1)) for datetime64 / timedelta64; metadata is None
    # from numpy 2 and an empty dict from numpy 1.x.
    try:
        metadata, (unit, count, den, events) = extra
    except (TypeError, ValueError):
        raise Refused(f"refused {where}: datetime metadata {extra!r:.60}") from None
    if isinstance(unit, bytes):
        unit = unit.decode("latin1")
    no_metadata = metadata is None or (type(metadata) is dict and not metadata)
    ok = (no_metadata and type(unit) is str and _DATETIME_UNIT.fullmatch(unit)
          and _is_int(count) and 1 <= count < 2**31 and den == 1 and events == 1)
    if not ok:
        raise Refused(f"refused {where}: datetime metadata {extra!r:.60}")
    return np.dtype(f"{base.kind}8[{count}{unit}]")


def _structured(base: np.dtype, names: Any, fields: Any, where: str) -> np.dtype:
    if type(names) is not tuple or type(fields) is not dict or set(names) != set(fields) \
            or len(names) != len(fields) or not all(type(n) is str for n in names):
        raise Refused(f"refused {where}: names and fields do not match")
    formats, offsets = [], []
    for name in names:
        entry = fields[name]
        if type(entry) is not tuple or len(entry) != 2 or not _is_int(entry[1]) or entry[1] < 0:
            raise Refused(f"refused {where}: field '{name}' is not (dtype, offset) (titles are "
                          "not supported)")
        field = _dtype_arg(entry[0], where)
        # Object fields in a structured array would let raw bytes from the file be read as
        # pointers; research pickles never need them.
        if field.hasobject:
            raise Refused(f"refused {where}: field '{name}' holds Python objects")
        formats.append(field)
        offsets.append(entry[1])
    # numpy's dict constructor checks that every field lies inside the item size.
    return np.dtype({"names": list(names), "formats": formats, "offsets": offsets,
                     "itemsize": base.itemsize})


# ----------------------------------------------------------------------------- numpy arrays


class _ArrayStub:
    """What ``_reconstruct`` returns here; BUILD (ndarray.__setstate__'s state) completes it."""

    __slots__ = ("array",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise Refused("refused a second BUILD on one numpy array")
        self.array = _build_array(state)


def _reconstruct(qualname: str, *args: Any) -> _ArrayStub:
    # numpy always writes _reconstruct(ndarray, (0,), b'b') and puts the contents in the state.
    if len(args) != 3 or args[0] is not _NDARRAY or args[1] != (0,) or args[2] not in (b"b", "b"):
        raise _bad(qualname, "expected (numpy.ndarray, (0,), b'b') as numpy writes it")
    return _ArrayStub()


def _build_array(state: Any) -> np.ndarray:
    where = "numpy array state"
    if type(state) is tuple and len(state) == 5 and state[0] == 1:
        state = state[1:]
    if type(state) is not tuple or len(state) != 4:
        raise Refused(f"refused {where}: expected (1, shape, dtype, is_fortran, data)")
    shape, dtype, fortran, raw = state
    shape = _shape(shape, where)
    dtype = _dtype_arg(dtype, where)
    if not _is_flag(fortran):
        raise Refused(f"refused {where}: is_fortran is not a flag")
    count = math.prod(shape)
    if dtype.hasobject:
        # numpy allocates the array before it compares the list's length with the shape.
        if type(raw) is not list or len(raw) != count:
            raise Refused(f"refused {where}: shape {shape} needs {count} objects, the file "
                          f"holds {len(raw) if type(raw) is list else 'no list of'} them")
        raw = [resolve(item) for item in raw]  # arrays inside object arrays
    else:
        raw = _raw_bytes(raw, "the array data", where)
        _check_size(count, dtype, len(raw), where)
    array = _np_reconstruct(np.ndarray, (0,), b"b")
    array.__setstate__((1, shape, dtype, bool(fortran), raw))
    return array


def _check_size(count: int, dtype: np.dtype, held: int, where: str) -> None:
    if dtype.itemsize == 0 and count:
        raise Refused(f"refused {where}: {count} elements of zero size")
    if count * dtype.itemsize != held:
        raise Refused(f"refused {where}: {count} elements of {dtype.itemsize} bytes need "
                      f"{count * dtype.itemsize} bytes, the file holds {held}")


def _frombuffer(qualname: str, *args: Any) -> _ArrayStub:
    # Protocol 5 in-band arrays: _frombuffer(buffer, dtype, shape, order).
    if len(args) != 4 or args[3] not in ("C", "F"):
        raise _bad(qualname, "expected (buffer, dtype, shape, 'C' or 'F')")
    buffer = _raw_bytes(args[0], "the buffer", qualname)
    dtype = _dtype_arg(args[1], qualname)
    shape = _shape(args[2], qualname)
    if dtype.hasobject:
        raise _bad(qualname, "a buffer of Python objects")
    _check_size(math.prod(shape), dtype, len(buffer), qualname)
    # Returned complete, so a later BUILD on it is refused instead of reaching numpy.
    return _ArrayStub(_np_frombuffer(buffer, dtype, shape, args[3]))


def _scalar(qualname: str, *args: Any) -> Any:
    if len(args) != 2:
        raise _bad(qualname, "expected (dtype, data)")
    dtype = _dtype_arg(args[0], qualname)
    if dtype.hasobject:
        return args[1]  # numpy's scalar() of an object dtype is the object itself
    data = _raw_bytes(args[1], "the scalar data", qualname)
    if len(data) != dtype.itemsize:
        raise _bad(qualname, f"{len(data)} bytes for a {dtype.itemsize}-byte scalar")
    # numpy scalars' __setstate__ (reached by a BUILD on the result) is numpy.generic's no-op.
    return _np_scalar(dtype, bytes(data))


# ----------------------------------------------------------------------------- Python builtins


def _encode(qualname: str, *args: Any) -> bytes:
    if len(args) != 2 or type(args[0]) is not str or args[1] not in _LATIN1:
        raise _bad(qualname, "only (text, 'latin1') is admitted")
    return args[0].encode("latin1")


def _bytes(qualname: str, *args: Any) -> bytes:
    if args:  # Python 3 writes bytes() for b'' at protocol <= 2; bytes(n) would allocate n
        raise _bad(qualname, "only bytes() with no argument is admitted")
    return b""


def _bytearray(qualname: str, *args: Any) -> bytearray:
    if not args:
        return bytearray()
    if len(args) == 1 and type(args[0]) is bytes:
        return bytearray(args[0])
    if len(args) == 2 and type(args[0]) is str and args[1] in _LATIN1:  # Python 2's form
        return bytearray(args[0], "latin1")
    raise _bad(qualname, "only bytearray(bytes) or bytearray(text, 'latin-1') is admitted "
               "(never a size)")


# A dict key or set element must hash in bounded time. Tuples and ints do not cache their hash,
# and a pickle can share one object many times: t = (u, u), u = (v, v), ... takes time
# exponential in the depth to hash, and one huge tuple or int used as the key of every entry,
# quadratic time. So keys are scalars (ints of at most 64 bits) or short tuples of those.
MAX_KEY_TUPLE = 16
MAX_KEY_INT_BITS = 64


def cheap_key(value: Any) -> bool:
    """Whether ``value`` may be a dict key or a set element (see above)."""
    kind = type(value)
    if kind is tuple:
        return len(value) <= MAX_KEY_TUPLE and all(
            type(v) is not tuple and cheap_key(v) for v in value)
    if kind is int:
        return value.bit_length() <= MAX_KEY_INT_BITS
    return kind in (str, bytes, float, bool, complex, type(None), frozenset) or isinstance(
        value, np.generic)


def _collection(kind: type) -> Callable[..., Any]:
    def build(qualname: str, *args: Any) -> Any:
        if not args:
            return kind()
        if len(args) == 1 and type(args[0]) in (list, tuple):
            items = args[0]
            keys = [item[0] if type(item) in (list, tuple) and len(item) == 2 else None
                    for item in items] if kind is OrderedDict else items
            if not all(cheap_key(k) for k in keys):
                raise _bad(qualname, "a key or element that is not a plain scalar or a short "
                           f"tuple of scalars (at most {MAX_KEY_TUPLE})")
            return kind(items)
        raise _bad(qualname, "expected no argument or one list")

    return build


def _complex(qualname: str, *args: Any) -> complex:
    if not 1 <= len(args) <= 2 or not all(type(a) in (int, float) for a in args):
        raise _bad(qualname, "expected (real, imag) numbers")
    return complex(*args)


_NDARRAY = _Admitted("numpy.ndarray", None)

# Every (module, name) a pickle may name, and why each stays. Exact pairs only: no prefixes, no
# dotted names; numpy 1.x spells numpy._core as numpy.core, Python 2 spells builtins __builtin__.
_ADMITTED: dict[tuple[str, str], Callable[..., Any]] = {
    # numpy arrays (every MMSA / authors' feature pickle): _reconstruct(ndarray, (0,), b'b') + state
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # written by numpy 2.x
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 1.x, Python 2 pickles
    # numpy dtypes: in every array state and scalar (dtype('f4', False, True) + state)
    ("numpy", "dtype"): _dtype,
    # numpy scalars: ChaLearn's annotation pickles hold numpy.float64 scores
    ("numpy._core.multiarray", "scalar"): _scalar,  # numpy 2.x
    ("numpy.core.multiarray", "scalar"): _scalar,  # numpy 1.x, Python 2 (ChaLearn's files)
    # protocol 5 writes arrays as _frombuffer(buffer, dtype, shape, order)
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,  # numpy 2.x
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # numpy 1.x
    # bytes at protocol <= 2 from Python 3 (array buffers): _codecs.encode(text, 'latin1')
    ("_codecs", "encode"): _encode,
    # b'' at protocol <= 2 from Python 3 (the buffer of an empty array): bytes()
    ("__builtin__", "bytes"): _bytes,
    # plain containers and numbers that have no opcode of their own at some protocol
    ("builtins", "set"): _collection(set),  # protocol <= 3
    ("__builtin__", "set"): _collection(set),  # Python 2, or Python 3 at protocol <= 2
    ("builtins", "frozenset"): _collection(frozenset),
    ("__builtin__", "frozenset"): _collection(frozenset),
    ("builtins", "bytearray"): _bytearray,  # protocol <= 4
    ("__builtin__", "bytearray"): _bytearray,
    ("builtins", "complex"): _complex,  # every protocol
    ("__builtin__", "complex"): _complex,
    ("collections", "OrderedDict"): _collection(OrderedDict),  # dict-like metadata, py2 and 3
}
_GLOBALS: dict[tuple[str, str], _Admitted] = {
    key: _Admitted(f"{key[0]}.{key[1]}", call) for key, call in _ADMITTED.items()
}
# numpy.ndarray is named only as _reconstruct's first argument; calling it is refused.
_GLOBALS[("numpy", "ndarray")] = _NDARRAY


def admitted(module: str, name: str) -> _Admitted | None:
    """The wrapper for an admitted global, or None."""
    return _GLOBALS.get((module, name))


def admitted_names() -> list[str]:
    return sorted(f"{module}.{name}" for module, name in _GLOBALS)


# ----------------------------------------------------------------------------- the result

_LEAVES = (type(None), bool, int, float, complex, str, bytes, bytearray, set, frozenset, np.dtype)


def resolve(root: Any) -> Any:
    """``root`` with every stub replaced by its numpy object; refuses what is not plain data.

    Iterative (a pickle can nest containers as deep as it has opcodes). Sets and dict keys need
    no visit: stubs are unhashable, so they cannot be inside.
    """
    final: dict[int, tuple[Any, Any]] = {}  # id -> (original, replacement); keeps ids alive
    active: set[int] = set()
    cycled: set[int] = set()
    todo: list[tuple[Any, bool]] = [(root, False)]
    while todo:
        obj, expanded = todo.pop()
        key = id(obj)
        if expanded:
            active.discard(key)
            final[key] = (obj, _rebuild(obj, final, key in cycled))
            continue
        if key in final:
            continue
        if key in active:
            cycled.add(key)
            continue
        kind = type(obj)
        if kind in _LEAVES or isinstance(obj, np.generic):
            continue
        if kind is _ArrayStub:
            if obj.array is None:
                raise Refused("refused a numpy array whose contents were never set")
            final[key] = (obj, obj.array)
            todo.append((obj.array, False))
            continue
        if kind is _DTypeStub:
            final[key] = (obj, obj.final())
            continue
        if kind is OrderedDict and vars(obj):
            raise Refused("refused attributes set on an OrderedDict (BUILD)")
        if kind in (dict, OrderedDict):
            children: Any = list(obj.values())
        elif kind in (list, tuple):
            children = obj
        elif kind is np.ndarray:
            children = obj.ravel(order="K") if obj.dtype.hasobject else ()
        elif kind is _Admitted:
            raise Refused(f"refused a reference to '{obj.qualname}' itself in the data")
        else:
            raise Refused(f"refused an object of type {kind.__name__} in the data")
        active.add(key)
        todo.append((obj, True))
        todo.extend((child, False) for child in children)
    return final.get(id(root), (root, root))[1]


def _rebuild(obj: Any, final: dict[int, tuple[Any, Any]], cycled: bool) -> Any:
    def swap(child: Any) -> Any:
        return final.get(id(child), (child, child))[1]

    kind = type(obj)
    if kind in (dict, OrderedDict):
        for k, v in list(obj.items()):
            if swap(v) is not v:
                obj[k] = swap(v)
    elif kind is list:
        for i, v in enumerate(obj):
            if swap(v) is not v:
                obj[i] = swap(v)
    elif kind is tuple:
        new = tuple(swap(v) for v in obj)
        if any(a is not b for a, b in zip(new, obj, strict=True)):
            if cycled:  # something inside refers back to the old tuple
                raise Refused("refused a tuple that contains itself and a numpy object")
            return new
    elif kind is np.ndarray and any(swap(v) is not v for v in obj.ravel(order="K")):
        raise Refused("refused a numpy object placed inside an object array after it was built")
    return obj
