"""Reading pickles that users bring without running code from them.

A pickle can name any importable callable and have it called while loading. The research formats we
read (MMSA feature pickles, ChaLearn annotation pickles) only ever need plain containers, numbers,
strings and numpy arrays, so the unpickler below admits exactly the globals that rebuild those and
refuses everything else before it is imported.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from psamf.errors import InputError, NotFoundError

# (module, name) pairs needed to rebuild numpy arrays, dtypes and scalars across numpy 1.x / 2.x,
# plus the harmless builtins that old protocol-0/2 pickles reference for containers.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("__builtin__", "set"),
        ("__builtin__", "frozenset"),
        ("__builtin__", "bytearray"),
        ("__builtin__", "complex"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
        # Protocol <= 2 pickles written by Python 3 store bytes (e.g. numpy array buffers) as
        # _codecs.encode(text, "latin1"); it only transforms data, it cannot run code.
        ("_codecs", "encode"),
    }
)
# numpy dtype classes (numpy.dtypes.Float32DType, ...) appear in pickles written by numpy >= 1.25.
_ALLOWED_MODULE_PREFIXES: tuple[str, ...] = ("numpy.dtypes",)


class UnsafePickleError(InputError):
    """A pickle asked for a global outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, *, source: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        allowed = (module, name) in _ALLOWED_GLOBALS or (
            module.startswith(_ALLOWED_MODULE_PREFIXES) and name[:1].isupper()
        )
        if not allowed:
            raise UnsafePickleError(
                f"{self._source}: refused to load global '{module}.{name}'. psamf only reads "
                "pickles made of plain containers, numbers, strings and numpy arrays; this file "
                "references other code, which could run arbitrary commands. Re-export the data "
                "with plain types (dicts, lists, numpy arrays) if you trust its origin."
            )
        return super().find_class(module, name)


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
        return _RestrictedUnpickler(
            io.BytesIO(data), source=str(path), encoding=encoding
        ).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, UnicodeDecodeError) as err:
        raise InputError(
            f"{path}: not a readable pickle ({type(err).__name__}: {err}); the file may be "
            "truncated or corrupt, re-download or re-export it"
        ) from err
