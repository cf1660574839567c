"""Whether to draw progress bars: only on a terminal.

A bar redraws itself with carriage returns many times a second; in stderr redirected to a file
(a batch job's log) that is thousands of lines of noise, so bars are drawn only when stderr is a
terminal, and never when the caller turned them off.
"""

from __future__ import annotations

import sys


def bars_enabled(wanted: bool = True) -> bool:
    """True when a progress bar is wanted and stderr is an interactive terminal."""
    stream = sys.stderr
    return bool(wanted) and stream is not None and hasattr(stream, "isatty") and stream.isatty()
