"""psamf's one error family: problems the user can fix, reported as one line.

Every error psamf raises for bad input, a missing file or a refused setting derives from
``PsamfError``. The CLI catches the family and prints the message alone on stderr with exit status
2, so a message must name the file, field or value and say what to do instead. Each class also
derives from the built-in exception it refines (``ValueError``, ``FileNotFoundError``, ...), so code
that catches the built-in keeps working.
"""

from __future__ import annotations


class PsamfError(Exception):
    """Base of the family: a user-fixable problem whose message is one complete line."""


class InputError(PsamfError, ValueError):
    """A file, field or value psamf refuses: malformed data, a bad setting, a corrupt file."""


class NotFoundError(PsamfError, FileNotFoundError):
    """A file, folder or model that is not where it was looked for."""


class NotWritableError(PsamfError, PermissionError):
    """A place psamf cannot write to."""


class AlreadyExistsError(PsamfError, FileExistsError):
    """An output that exists already and would be overwritten (a run folder, say)."""


class TrainingDivergedError(PsamfError, ArithmeticError):
    """The loss or the predictions became NaN or infinite; training stops instead of going on."""
