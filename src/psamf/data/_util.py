"""Small helpers shared by the readers (error-message formatting)."""

from __future__ import annotations

from collections.abc import Iterable


def few(items: Iterable[object], n: int = 5) -> str:
    """'a, b, c, ... (12 in all)': enough of a list to find the problem, short enough to read."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")
