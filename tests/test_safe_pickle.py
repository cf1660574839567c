"""The restricted unpickler: plain data in, code refused before it is imported or run."""

from __future__ import annotations

import collections
import os
import pickle
import sys

import numpy as np
import pytest

from psamf.data.safe_pickle import UnsafePickleError, safe_load


def payload() -> dict:
    return {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i64": np.array([1, -2], dtype=np.int64),
        "ids": np.array(["a$_$1", "b$_$2"], dtype=object),
        "scalar": np.float32(0.5),
        "ordered": collections.OrderedDict(a=1),
        "set": {1, 2},
        "text": "caf\u00e9",
        "raw": b"\x00\xff",
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_data_round_trips(tmp_path, protocol):
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(payload(), protocol=protocol))
    out = safe_load(path)
    np.testing.assert_array_equal(out["f32"], payload()["f32"])
    assert out["f32"].dtype == np.float32 and out["i64"].dtype == np.int64
    assert list(out["ids"]) == ["a$_$1", "b$_$2"]
    assert out["ordered"] == {"a": 1} and out["set"] == {1, 2}
    assert out["text"] == "caf\u00e9" and out["raw"] == b"\x00\xff"
    assert out["scalar"] == np.float32(0.5)


def test_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": Exploit()}, protocol=2))
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path, encoding="latin1")
    assert str(path) in str(err.value)
    assert f"'{os.system.__module__}.system'" in str(err.value)
    assert not marker.exists()


def test_unknown_module_is_refused_before_import(tmp_path):
    # GLOBAL 'psamf_never_imported_xyz.run', call it with no arguments.
    path = tmp_path / "global.pkl"
    path.write_bytes(b"\x80\x02cpsamf_never_imported_xyz\nrun\nq\x00)R.")
    with pytest.raises(UnsafePickleError, match="psamf_never_imported_xyz.run"):
        safe_load(path)
    assert "psamf_never_imported_xyz" not in sys.modules


@pytest.mark.parametrize("target", [eval, getattr, __import__])
def test_builtins_that_run_code_are_refused(tmp_path, target):
    class Exploit:
        def __reduce__(self):
            return (target, ("1",) if target is not getattr else (0, "real"))

    path = tmp_path / "b.pkl"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(UnsafePickleError, match=f"builtins.{target.__name__}"):
        safe_load(path)


def test_missing_truncated_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        safe_load(tmp_path / "nothing.pkl")
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(payload(), protocol=4)[:-40])
    with pytest.raises(ValueError, match=r"cut\.pkl: not a readable pickle"):
        safe_load(path)
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(ValueError, match="not a readable pickle"):
        safe_load(path)
