"""Shared by the extractors: importing an optional media library (or saying, in one line, how to
install it), and building an extractor by name from its settings."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar

from psamf.errors import InputError, NotFoundError

T = TypeVar("T")


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


def build_named(kind: str, registry: Mapping[str, Callable[..., T]], name: str,
                settings: dict[str, Any]) -> T:
    """``registry[name](**settings)``, where each entry is a dataclass whose fields are its
    settings; an unknown name or setting is one line listing the known ones."""
    if name not in registry:
        raise InputError(f"unknown {kind} extractor {name!r}; choose one of {sorted(registry)}")
    builder = registry[name]
    known = {f.name for f in dataclasses.fields(builder)}  # type: ignore[arg-type]
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InputError(
            f"{kind} extractor {name!r} has no setting(s) {unknown}; known: {sorted(known)}"
        )
    return builder(**settings)
