"""The restricted unpickler: plain data in, code refused before it is imported or run.

Hostile pickles are assembled opcode by opcode (tests/pickle_ops.py). Each one that would run code
touches a marker file; ``test_hostile_payloads_do_run_under_plain_pickle`` proves that by loading
them with the plain unpickler in a child process, so the refusals below are refusals of real
attacks, not of bytes that would have failed anyway.
"""

from __future__ import annotations

import collections
import copyreg
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from pickle_ops import (
    APPENDS,
    BINPERSID,
    BUILD,
    DUP,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_TUPLE,
    MARK,
    MEMOIZE,
    NEWFALSE,
    NEWOBJ,
    NEWOBJ_EX,
    NEWTRUE,
    NONE,
    POP,
    REDUCE,
    SETITEM,
    SETITEMS,
    STOP,
    TUPLE,
    TUPLE1,
    TUPLE2,
    binbytes,
    binget,
    binput,
    binstring,
    call,
    counted,
    ext,
    frame,
    glob,
    inst,
    integer,
    long_binput,
    lst,
    obj,
    persid,
    pickle_of,
    proto,
    short_text,
    stack_glob,
    text,
    tup,
)
from test_data_readers import SIZES, mmsa_split

from psamf.data._pickle_allowlist import admitted_names
from psamf.data.safe_pickle import UnsafePickleError, safe_load
from psamf.errors import InputError

# A numpy module that imports os (its name moved in numpy 2): a real stepping stone to os.system.
NPYIO = "numpy.lib._npyio_impl" if int(np.__version__.split(".")[0]) >= 2 else "numpy.lib.npyio"

# ----------------------------------------------------------------------------- round trips


def payload() -> dict:
    return {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.linspace(0, 1, 5),
        "i64": np.array([1, -2], dtype=np.int64),
        "bool": np.array([True, False]),
        "str": np.array(["ab", "c\u00e9"]),
        "bytes": np.array([b"a", b"bc"]),
        "ids": np.array(["a$_$1", "b$_$2"], dtype=object),
        "nested": np.array([np.arange(2), None, "x"], dtype=object),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "zero_d": np.array(3.5),
        "struct": np.array([(1.5, 2)], dtype=[("a", "<f4"), ("b", "<i8")]),
        "big_endian": np.arange(3, dtype=">f4"),
        "dates": np.array(["2020-01-02"], dtype="datetime64[D]"),
        "scalars": [np.float32(0.5), np.int64(7), np.bool_(True), np.str_("s"), np.float64(2)],
        "ordered": collections.OrderedDict(a=1),
        "set": {1, 2},
        "frozen": frozenset({3}),
        "complex": 1 + 2j,
        "bytearray": bytearray(b"\x00\x01"),
        "text": "caf\u00e9",
        "raw": b"\x00\xff",
        "empty_raw": b"",
        "pair": (np.arange(2), "t"),
        "big_int": 2**100,
    }


def assert_same(got, want, where="root"):
    """Deep equality that also compares types, dtypes, shapes and memory order."""
    assert type(got) is type(want), where
    if isinstance(want, np.ndarray):
        assert (got.dtype, got.shape) == (want.dtype, want.shape), where
        assert got.flags.f_contiguous == want.flags.f_contiguous, where
        assert got.flags.writeable == want.flags.writeable, where
        if want.dtype.hasobject:
            for i, (g, w) in enumerate(zip(got.ravel(), want.ravel(), strict=True)):
                assert_same(g, w, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_plain_data_round_trips_like_plain_pickle(tmp_path, protocol):
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(payload(), protocol=protocol))
    out = safe_load(path)
    # The reference is what pickle itself makes of the same trusted bytes.
    assert_same(out, pickle.loads(path.read_bytes()))
    assert out["struct"]["b"][0] == 2 and out["nested"][0].tolist() == [0, 1]


@pytest.mark.parametrize("name", ["mosi/mosi_utterance_audio.pkl",
                                  *(f"first_impressions/{kind}_{split}.pkl"
                                    for kind in ("annotation", "transcription")
                                    for split in ("training", "validation", "test"))])
def test_real_shared_data_pickles_read_as_plain_pickle_does(name):
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real data not found: {path} (see ../shared/data/README.md)")
    want = pickle.loads(path.read_bytes(), encoding="latin1")  # trusted files
    assert_same(safe_load(path, encoding="latin1"), want)


def dtype_ops(spec: str, byteorder: str, string=short_text, flag=(NEWFALSE, NEWTRUE)) -> bytes:
    """numpy.dtype(spec, False, True) with its version 3 state, as numpy writes it."""
    return (call(glob("numpy", "dtype"), string(spec), *flag)
            + tup(integer(3), string(byteorder), NONE, NONE, NONE, integer(-1), integer(-1),
                  integer(0)) + BUILD)


def test_numpy_1x_pickles_by_hand(tmp_path):
    # numpy 1.x names numpy.core where numpy 2 names numpy._core; the shapes are the same.
    data = np.arange(6, dtype="<f4").tobytes()
    array = (call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"),
                  tup(integer(0)), binbytes(b"b"))
             + tup(integer(1), tup(integer(2), integer(3)), dtype_ops("f4", "<"), NEWFALSE,
                   binbytes(data)) + BUILD)
    scalar = call(glob("numpy.core.multiarray", "scalar"), dtype_ops("i8", "<"),
                  binbytes((7).to_bytes(8, "little")))
    buffered = call(glob("numpy.core.numeric", "_frombuffer"), binbytes(data),
                    dtype_ops("f4", "<"), tup(integer(3), integer(2)), short_text("F"))
    path = tmp_path / "np1.pkl"
    path.write_bytes(pickle_of(tup(array, scalar, buffered)))
    got_array, got_scalar, got_buffered = safe_load(path)
    np.testing.assert_array_equal(got_array, np.arange(6, dtype="f4").reshape(2, 3))
    assert type(got_scalar) is np.int64 and got_scalar == 7
    np.testing.assert_array_equal(got_buffered,
                                  np.arange(6, dtype="f4").reshape(3, 2, order="F"))


def test_python2_pickles_by_hand(tmp_path):
    # Python 2 (ChaLearn's files): str data as SHORT_BINSTRING, ints for flags, __builtin__.
    f8 = dtype_ops("f8", "<", string=binstring, flag=(integer(0), integer(1)))
    score = call(glob("numpy.core.multiarray", "scalar"), f8, binstring(b"\x00" * 7 + b"\x40"))
    array = (call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"),
                  tup(integer(0)), binstring(b"b"))
             + tup(integer(1), tup(integer(2)),
                   dtype_ops("i4", "<", string=binstring, flag=(integer(0), integer(1))),
                   integer(0), binstring(np.array([5, -1], "<i4").tobytes())) + BUILD)
    body = (EMPTY_DICT
            + binstring(b"score") + score + SETITEM
            + binstring(b"array") + array + SETITEM
            + binstring(b"set") + call(glob("__builtin__", "set"), lst(integer(1), integer(2)))
            + SETITEM
            + binstring(b"order") + call(glob("collections", "OrderedDict"),
                                        lst(lst(binstring(b"k"), integer(1)))) + SETITEM
            + binstring(b"caf\xe9") + text("unicode \u00e9") + SETITEM)
    path = tmp_path / "py2.pkl"
    path.write_bytes(pickle_of(body, protocol=2))
    out = safe_load(path, encoding="latin1")
    assert out["score"] == 2.0 and type(out["score"]) is np.float64
    assert out["array"].tolist() == [5, -1] and out["array"].dtype == np.int32
    assert out["set"] == {1, 2} and out["order"] == {"k": 1}
    assert out["caf\u00e9"] == "unicode \u00e9"


# ----------------------------------------------------------------------------- hostile corpus


def hostile_corpus(tmp_path: Path) -> dict[str, tuple[bytes, str, bool]]:
    """name -> (pickle, what the refusal must name, whether plain pickle would run it).

    Each payload that runs creates ``tmp_path/<name>/MARKER``.
    """
    out: dict[str, tuple[bytes, str, bool]] = {}

    def add(name: str, build: Callable[[str, Path], bytes], names: str, runs: bool) -> None:
        folder = tmp_path / name
        folder.mkdir()
        out[name] = (build(f"touch {folder / 'MARKER'}", folder / "MARKER"), names, runs)

    def system(module: str, name: str = "system", *, stack: bool = False):
        def build(cmd, _):
            fn = stack_glob(module, name) if stack else glob(module, name)
            return pickle_of(call(fn, text(cmd)), protocol=4 if stack else 2)
        return build

    add("os.system", system("os"), "os.system", True)
    add("posix.system", system("posix", stack=True), "posix.system", True)
    add("nt.system", system("nt"), "nt.system", False)  # Windows only
    add("subprocess.Popen", lambda c, m: pickle_of(
        call(glob("subprocess", "Popen"), lst(text("touch"), text(str(m))))),
        "subprocess.Popen", True)
    for spelling in ("builtins", "__builtin__"):
        for fn in ("eval", "exec"):
            add(f"{spelling}.{fn}", lambda c, m, s=spelling, f=fn: pickle_of(
                call(glob(s, f), text(f"__import__('os').system({c!r})")), protocol=2),
                f"{spelling}.{fn}", True)
    add("getattr", lambda c, m: pickle_of(call(call(
        glob("builtins", "getattr"), call(glob("builtins", "__import__"), text("os")),
        text("system")), text(c))), "builtins.getattr", True)
    add("__import__", lambda c, m: pickle_of(call(
        glob("builtins", "__import__"), text("psamf_never_imported_xyz"))),
        "builtins.__import__", False)
    add("open", lambda c, m: pickle_of(call(glob("builtins", "open"), text(str(m)), text("w"))),
        "builtins.open", True)
    add("compile", lambda c, m: pickle_of(
        call(glob("builtins", "compile"), text(f"import os; os.system({c!r})"), text("x"),
             text("exec")), binput(0), POP, call(glob("builtins", "eval"), binget(0))),
        "builtins.compile", True)
    add("breakpoint", lambda c, m: pickle_of(call(glob("builtins", "breakpoint"))),
        "builtins.breakpoint", False)
    add("importlib.import_module", lambda c, m: pickle_of(
        call(glob("importlib", "import_module"), text("os")), binput(0), POP,
        call(call(glob("operator", "methodcaller"), text("system"), text(c)), binget(0))),
        "importlib.import_module", True)
    add("pickle.loads", lambda c, m: pickle_of(call(glob("pickle", "loads"), binbytes(
        pickle_of(call(glob("os", "system"), text(c)), protocol=2)))), "pickle.loads", True)

    def numpy_load(cmd, marker):
        inner = marker.parent / "inner.pkl"
        inner.write_bytes(pickle_of(call(glob("os", "system"), text(cmd)), protocol=2))
        return pickle_of(call(glob("numpy", "load"), text(str(inner)), NONE, NEWTRUE))

    add("numpy.load", numpy_load, "numpy.load", True)
    add("numpy.testing", lambda c, m: pickle_of(call(
        stack_glob("numpy.testing._private.utils", "runstring"),
        text(f"import os; os.system({c!r})"), EMPTY_DICT)),
        "numpy.testing._private.utils.runstring", True)
    add("numpy.testing.attr", lambda c, m: pickle_of(stack_glob("numpy", "testing")),
        "numpy.testing", False)
    for spelling in ("copyreg", "copy_reg"):
        add(f"{spelling}._reconstructor", lambda c, m, s=spelling: pickle_of(call(
            glob(s, "_reconstructor"), glob("subprocess", "Popen"), glob("subprocess", "Popen"),
            lst(text("touch"), text(str(m)))), protocol=2), f"{spelling}._reconstructor", True)
    add("functools.partial", lambda c, m: pickle_of(call(call(
        glob("functools", "partial"), glob("os", "system"), text(c)))),
        "functools.partial", True)
    add("operator.attrgetter", lambda c, m: pickle_of(call(call(call(
        glob("operator", "attrgetter"), text("system")),
        call(glob("importlib", "import_module"), text("os"))), text(c))),
        "operator.attrgetter", True)
    add("types.FunctionType", lambda c, m: pickle_of(call(call(
        glob("types", "FunctionType"),
        call(glob("builtins", "compile"), text(f"import os; os.system({c!r})"), text("x"),
             text("exec")), EMPTY_DICT))), "types.FunctionType", True)
    add("codecs.open", lambda c, m: pickle_of(call(glob("codecs", "open"), text(str(m)),
                                                   text("w"))), "codecs.open", True)
    # Dotted attribute walks, the reported hole: from an admitted module and from numpy.dtypes.
    add("dotted.numpy", system("numpy", f"{NPYIO[6:]}.os.system", stack=True),
        f"{NPYIO}.os.system", True)
    add("dotted.numpy.dtypes", lambda c, m: pickle_of(call(stack_glob(
        "numpy.dtypes", "Float32DType.__base__.__base__.__subclasses__"))),
        "numpy.dtypes.Float32DType.__base__.__base__.__subclasses__", False)
    add("dotted.module", system(NPYIO, "os.system", stack=True), f"{NPYIO}.os.system", True)
    # The names memoised, then fetched back (MEMOIZE / BINGET) or duplicated (DUP).
    add("memo.names", lambda c, m: pickle_of(
        short_text("posix"), MEMOIZE, POP, short_text("system"), MEMOIZE, POP,
        binget(0), binget(1), b"\x93", tup(text(c)), REDUCE), "posix.system", True)
    add("memo.dup", lambda c, m: pickle_of(
        short_text("posix"), DUP, POP, short_text("system"), b"\x93", tup(text(c)), REDUCE),
        "posix.system", True)
    # Hidden after valid MMSA data: a second pickle, or the first one's STOP replaced.
    valid = pickle.dumps({s: mmsa_split(s, n, aligned=False) for s, n in SIZES.items()},
                         protocol=4)
    add("after.second_pickle", lambda c, m: valid + pickle_of(call(glob("os", "system"),
                                                                   text(c)), protocol=2),
        "os.system", False)
    add("after.second_stack_global", lambda c, m: valid + system("posix", stack=True)(c, m),
        "posix.system", False)
    add("after.trailing_opcodes", lambda c, m: valid[:-1] + POP + call(
        stack_glob("posix", "system"), text(c)) + STOP, "posix.system", True)
    # __reduce_ex__-style (callable, args, state, listitems, dictitems).
    add("reduce_ex", lambda c, m: pickle_of(
        call(stack_glob("posix", "system"), text(c)), MARK, integer(1), APPENDS,
        EMPTY_DICT, BUILD), "posix.system", True)
    # Opcodes that reach classes or application code without find_class's wrappers.
    add("INST", lambda c, m: pickle_of(inst("os", "system", text(c)), protocol=0),
        "opcode INST", True)
    add("OBJ", lambda c, m: pickle_of(obj(glob("builtins", "set")), protocol=1), "opcode OBJ",
        False)
    add("OBJ.system", lambda c, m: pickle_of(obj(glob("os", "system"), text(c)), protocol=1),
        "os.system", True)
    add("NEWOBJ", lambda c, m: pickle_of(
        glob("numpy", "ndarray"), tup(tup(integer(2**38))), NEWOBJ), "opcode NEWOBJ", False)
    add("NEWOBJ_EX", lambda c, m: pickle_of(
        glob("builtins", "set"), EMPTY_TUPLE, EMPTY_DICT, NEWOBJ_EX), "opcode NEWOBJ_EX", False)
    add("PERSID", lambda c, m: pickle_of(persid("x"), protocol=0), "opcode PERSID", False)
    add("BINPERSID", lambda c, m: pickle_of(text("x"), BINPERSID), "opcode BINPERSID", False)
    for opname, (code, _, _) in EXT_CODES.items():
        add(opname, lambda c, m, k=code: pickle_of(ext(k), tup(text(c)), REDUCE),
            f"opcode {opname}", True)
    # Admitted globals abused: BUILD on the global itself, attributes onto a container.
    add("build.global", lambda c, m: pickle_of(glob("numpy", "dtype"), tup(NONE, EMPTY_DICT),
                                               BUILD), "numpy.dtype", False)
    add("build.ordereddict", lambda c, m: pickle_of(
        call(glob("collections", "OrderedDict")),
        tup(NONE, EMPTY_DICT + short_text("items") + glob("numpy", "dtype") + SETITEM), BUILD),
        "OrderedDict", False)
    add("call.ndarray", lambda c, m: pickle_of(call(glob("numpy", "ndarray"),
                                                    tup(integer(2**38)))),
        "numpy.ndarray", False)
    add("never_imported", lambda c, m: pickle_of(call(glob("psamf_never_imported_xyz", "run"))),
        "psamf_never_imported_xyz.run", False)
    return out


# Extension codes registered with copyreg by the EXT tests (and by the plain-pickle control).
EXT_CODES = {"EXT1": (0xF1, "posix", "system"), "EXT2": (0xF123, "os", "system"),
             "EXT4": (0x7F123456, "os", "popen")}


@pytest.fixture
def shell_extensions():
    """Shell-running functions in copyreg's extension registry, and already in its cache."""
    for code, module, name in EXT_CODES.values():
        copyreg.add_extension(module, name, code)
        # What an earlier plain load would leave: the C unpickler returns it without find_class.
        copyreg._extension_cache[code] = getattr(os, name)
    yield
    for code, module, name in EXT_CODES.values():
        copyreg.remove_extension(module, name, code)


def assert_refused(path: Path, names: str) -> None:
    """Refused as unsafe, naming the file and ``names``; nothing imported; marker absent."""
    before = set(sys.modules)
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path, encoding="latin1")
    message = str(err.value)
    assert str(path) in message and names in message and "\n" not in message, message
    assert set(sys.modules) == before
    assert not (path.parent / "MARKER").exists()


def test_every_hostile_payload_is_refused(tmp_path, shell_extensions):
    corpus = hostile_corpus(tmp_path)
    assert len(corpus) > 40
    for name, (data, names, _) in corpus.items():
        path = tmp_path / name / "evil.pkl"
        path.write_bytes(data)
        assert_refused(path, names)
    assert "psamf_never_imported_xyz" not in sys.modules
    assert not list(tmp_path.glob("*/MARKER"))


CONTROL = """
import copyreg, pathlib, pickle, sys, time
for code, module, name in {codes!r}.values():
    copyreg.add_extension(module, name, code)
for path in sys.argv[1:]:
    try:
        pickle.loads(pathlib.Path(path).read_bytes())
    except BaseException:
        pass
time.sleep(0.5)  # subprocess.Popen's and os.popen's touch run in the background
"""


def test_hostile_payloads_do_run_under_plain_pickle(tmp_path):
    """The control: each payload marked as running does run with the unrestricted unpickler."""
    corpus = hostile_corpus(tmp_path)
    runs = [name for name, (_, _, run) in corpus.items() if run]
    paths = []
    for name in runs:
        (tmp_path / name / "evil.pkl").write_bytes(corpus[name][0])
        paths.append(str(tmp_path / name / "evil.pkl"))
    subprocess.run([sys.executable, "-c", CONTROL.format(codes=EXT_CODES), *paths],
                   check=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL,
                   capture_output=True)
    missing = [name for name in runs if not (tmp_path / name / "MARKER").exists()]
    assert not missing and len(runs) > 25


@pytest.mark.parametrize("qualname", admitted_names())
def test_dotted_names_from_every_admitted_global_are_refused(tmp_path, qualname):
    module, name = qualname.rsplit(".", 1)
    walks = [f"{name}.__class__", f"{name}.__class__.__base__.__subclasses__",
             f"{name}.__init__.__globals__", f"{name}.__self__", f"{name}.__reduce_ex__",
             f"{name}.__globals__", f"{name}.__subclasses__", "__builtins__.eval"]
    for i, walk in enumerate(walks):
        for n, fn in enumerate((stack_glob(module, walk), glob(module, walk))):
            path = tmp_path / f"{i}_{n}" / "evil.pkl"
            path.parent.mkdir()
            path.write_bytes(pickle_of(call(fn)))
            assert_refused(path, f"'{module}.{walk}'")
    # A dot in the module part, under an admitted module: only exact pairs are admitted.
    path = tmp_path / "pkg" / "evil.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle_of(call(stack_glob(f"{module}.sub", name))))
    assert_refused(path, f"'{module}.sub.{name}'")


def test_allow_list_is_exact_pairs_only():
    names = admitted_names()
    assert "numpy.dtypes.Float32DType" not in names
    assert all("." not in qualname.rsplit(".", 1)[1] for qualname in names)
    assert not any(n.startswith(("copyreg", "copy_reg", "os", "posix")) for n in names)


# ----------------------------------------------------------------------------- absurd sizes

HUGE = 2**38  # 256 GiB


def array_state(shape: bytes, dtype: bytes, data: bytes) -> bytes:
    return (call(glob("numpy._core.multiarray", "_reconstruct"), glob("numpy", "ndarray"),
                 tup(integer(0)), binbytes(b"b"))
            + tup(integer(1), shape, dtype, NEWFALSE, data) + BUILD)


ABSURD = {
    "bytearray(n)": (pickle_of(call(glob("builtins", "bytearray"), integer(HUGE))),
                     "builtins.bytearray"),
    "bytes(n)": (pickle_of(call(glob("__builtin__", "bytes"), integer(HUGE)), protocol=2),
                 "__builtin__.bytes"),
    "_reconstruct shape": (pickle_of(call(
        glob("numpy._core.multiarray", "_reconstruct"), glob("numpy", "ndarray"),
        tup(integer(HUGE)), binbytes(b"b"))), "numpy._core.multiarray._reconstruct"),
    "object array": (pickle_of(array_state(tup(integer(HUGE)), dtype_ops("O8", "|"),
                                           lst(NONE, NONE))), "numpy array state"),
    "float array": (pickle_of(array_state(tup(integer(HUGE), integer(HUGE)),
                                          dtype_ops("f4", "<"), binbytes(b"1234"))),
                    "numpy array state"),
    "zero-size items": (pickle_of(array_state(tup(integer(HUGE)), dtype_ops("V0", "|"),
                                              binbytes(b""))), "numpy array state"),
    "subarray dtype": (pickle_of(call(glob("numpy", "dtype"), short_text("(99999,99999)f8"),
                                      NEWFALSE, NEWTRUE)), "numpy.dtype"),
    "scalar": (pickle_of(call(glob("numpy._core.multiarray", "scalar"),
                              dtype_ops("V2000000000", "|"), binbytes(b""))),
               "numpy._core.multiarray.scalar"),
    "frombuffer": (pickle_of(call(glob("numpy._core.numeric", "_frombuffer"), binbytes(b""),
                                  dtype_ops("f8", "<"), tup(integer(HUGE)), short_text("C"))),
                   "numpy._core.numeric._frombuffer"),
    "memo index": (pickle_of(NONE, long_binput(2**32 - 1)), "LONG_BINPUT"),
    "text memo index": (pickle_of(NONE, b"p99999999999\n", protocol=0), "PUT"),
}
UNREADABLE = {
    "BINUNICODE8": pickle_of(counted(b"\x8d", "<Q", 2**62)),
    "BINBYTES8": pickle_of(counted(b"\x8e", "<Q", 2**62)),
    "BYTEARRAY8": pickle_of(counted(b"\x96", "<Q", 2**62), protocol=5),
    "BINBYTES": pickle_of(counted(b"B", "<I", 2**32 - 1)),
    "FRAME": pickle_of(frame(2**62), NONE),
    "second FRAME": pickle_of(frame(1), NONE, frame(2**40), NONE),
}


@pytest.mark.parametrize("case", ABSURD)
def test_absurd_allocations_are_refused_before_allocating(tmp_path, case):
    data, names = ABSURD[case]
    path = tmp_path / "huge.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path)
    message = str(err.value)
    assert str(path) in message and names in message and "MemoryError" not in message


@pytest.mark.parametrize("case", UNREADABLE)
def test_declared_lengths_past_the_end_are_unreadable(tmp_path, case):
    path = tmp_path / "huge.pkl"
    path.write_bytes(UNREADABLE[case])
    with pytest.raises(InputError, match=r"huge\.pkl: not a readable pickle") as err:
        safe_load(path)
    assert "MemoryError" not in str(err.value)


def test_out_of_bounds_dtype_fields_are_refused(tmp_path):
    # numpy's own dtype.__setstate__ accepts a field past the item size and then reads memory
    # outside the array; the state is rebuilt through numpy's checking constructor instead.
    field = dtype_ops("f8", "<")
    struct = (call(glob("numpy", "dtype"), short_text("V8"), NEWFALSE, NEWTRUE)
              + tup(integer(3), short_text("|"), NONE, tup(short_text("a")),
                    EMPTY_DICT + short_text("a") + tup(field, integer(1000)) + SETITEM,
                    integer(8), integer(1), integer(16)) + BUILD)
    path = tmp_path / "oob.pkl"
    path.write_bytes(pickle_of(array_state(tup(integer(1)), struct, binbytes(b"\0" * 8))))
    with pytest.raises(InputError, match=r"oob\.pkl: .*(1008|itemsize)"):
        safe_load(path)


# ----------------------------------------------------------------------------- plain failures


def test_missing_truncated_garbage_and_trailing_bytes(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        safe_load(tmp_path / "nothing.pkl")
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(payload(), protocol=4)[:-40])
    with pytest.raises(ValueError, match=r"cut\.pkl: not a readable pickle"):
        safe_load(path)
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(ValueError, match="not a readable pickle"):
        safe_load(path)
    path.write_bytes(pickle.dumps([1, 2], protocol=4) + b"junk")
    with pytest.raises(InputError, match=r"4 bytes follow the pickle's end"):
        safe_load(path)
    path.write_bytes(pickle.dumps([1, 2], protocol=4) * 2)
    with pytest.raises(InputError, match=r"exactly one pickle"):
        safe_load(path)


def _long_binget(index: int) -> bytes:
    return b"j" + index.to_bytes(4, "little")  # LONG_BINGET


def _shared_tuple_key(depth: int) -> bytes:
    """{t: None} with t = (u, u), u = (v, v), ... ``depth`` levels, each level memoised once:
    a few hundred bytes whose key takes 2**depth steps to hash."""
    out = proto(4) + EMPTY_DICT + MEMOIZE + EMPTY_TUPLE + MEMOIZE + POP
    for index in range(1, depth + 1):
        out += _long_binget(index) * 2 + TUPLE2 + MEMOIZE + POP
    return out + _long_binget(depth + 1) + NONE + SETITEM + STOP


def _repeated_costly_key(kind: str) -> bytes:
    """One big tuple / int used as the key of many entries (each SETITEM hashes it again)."""
    big = (MARK + integer(1) * 50_000 + TUPLE) if kind == "tuple" else (
        b"\x8b" + (40_000).to_bytes(4, "little") + b"\x01" * 40_000)  # LONG4, 320,000 bits
    return (proto(4) + EMPTY_DICT + big + MEMOIZE + POP + MARK
            + (_long_binget(0) + NONE) * 20_000 + SETITEMS + STOP)


@pytest.mark.parametrize("case", ["shared tuple", "big tuple", "big int", "set of tuples"])
def test_keys_that_take_forever_to_hash_are_refused_at_once(tmp_path, case):
    if case == "shared tuple":
        data = _shared_tuple_key(80)  # 2**80 hash steps if it were built
    elif case == "set of tuples":  # protocol 2 spells a set as builtins.set([...])
        data = (proto(2) + glob("__builtin__", "set") + EMPTY_LIST + MARK
                + (EMPTY_TUPLE + TUPLE1) * 3 + APPENDS + TUPLE1 + REDUCE + STOP)
    else:
        data = _repeated_costly_key(case.split()[1])
    path = tmp_path / "keys.pkl"
    path.write_bytes(data)
    started = time.perf_counter()
    with pytest.raises(UnsafePickleError, match=r"keys\.pkl: refused .*(key|element)"):
        safe_load(path)
    assert time.perf_counter() - started < 2.0


def test_short_flat_tuple_keys_still_load(tmp_path):
    data = {("a", 1): 1, (2.5, None, b"x"): 2, 7: {frozenset({"s", 3}): (1, 2)}}
    for protocol in (0, 2, 4, 5):
        path = tmp_path / f"ok{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        assert safe_load(path) == data
