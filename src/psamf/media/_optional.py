"""One place that imports an optional media library or says, in one line, how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from psamf.errors import NotFoundError


def require(module: str, *, extra: str = "media", purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ``NotFoundError`` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" (needed for {purpose})" if purpose else ""
        raise NotFoundError(
            f"python package {module!r} is not installed{what}; "
            f"install the {extra} extra: pip install 'psamf[{extra}]'"
        ) from exc
