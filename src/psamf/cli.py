"""The ``psamf`` command line: a thin layer over the library.

Each subcommand lives in ``psamf.commands.<name>`` and exposes ``register(subparsers)``; the
parser is assembled from ``COMMANDS`` so that ``--help`` always lists what exists.

Every user error ends the same way: one line ``psamf CMD: error: ...`` on stderr, exit status 2
(bad flags included: argparse's usage dump is replaced by a pointer to ``--help``). Ctrl-C ends
with exit status 130 and, where the command can continue, how to do so; ``psamf train`` treats
SIGTERM (a scheduler's stop, ``kill``) the same way, with the shell's status for it, 143.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from psamf import __version__
from psamf.errors import PsamfError

# Subcommand modules, in the order --help lists them.
COMMANDS: tuple[str, ...] = (
    "data", "extract", "train", "tune", "evaluate", "predict", "export", "serve",
    "pretrain_personality",
)
INTERRUPTED = 130  # the shell's status for a process ended by SIGINT (128 + 2)
# Errors ``main`` reports as one line with exit status 2: psamf's own family (the user's input)
# and OSError (the machine's: disk full, permissions). Anything else is a bug: a traceback, 1.
USER_ERRORS: tuple[type[Exception], ...] = (PsamfError, OSError)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds like Ctrl-C."""

    signum = signal.SIGTERM


def exit_status(stop: KeyboardInterrupt) -> int:
    """The shell's status for a process ended by the signal behind ``stop`` (128 + its number)."""
    return 128 + int(getattr(stop, "signum", signal.SIGINT))


def ignore_sigterm() -> None:
    """Ignore SIGTERM from now on (until ``sigterm_interrupts`` restores the handler it found):
    for the moments an interrupted command spends saying how to continue."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within: SIGTERM raises ``Terminated`` (once: later ones are ignored while it unwinds).
    Outside the main thread, where Python cannot install handlers, SIGTERM keeps its default
    action."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(_signum: int, _frame: object) -> None:
        ignore_sigterm()
        raise Terminated(f"signal {signal.SIGTERM.name}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} "
                     f"(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="psamf",
        description="PSA-MF multimodal sentiment analysis: data, training, evaluation, prediction.",
    )
    parser.add_argument("--version", action="version", version=f"psamf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"psamf.commands.{name}").register(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``KEY=VALUE`` overrides may sit anywhere among the flags.

    argparse gives a ``nargs="*"`` positional only the first run of words between options, so
    ``train --data sample epochs=1 --seeds 1 data.limit_train=8`` leaves ``data.limit_train=8``
    over; such leftovers are appended, in order, to the command's ``overrides``.
    """
    args, extras = parser.parse_known_args(argv)
    if extras and hasattr(args, "overrides"):
        words = [e for e in extras if not e.startswith("-") and "=" in e]
        args.overrides = [*args.overrides, *words]
        extras = [e for e in extras if e not in words]
    if extras:
        command = _subparser(parser, getattr(args, "command", None)) or parser
        command.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _subparser(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return None


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # before the imports below (seconds): run.json's wall time counts them
    parser = build_parser()
    args = parse(parser, argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given (psamf train --nproc)
    args.started = started
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:  # one line, no traceback
        print(f"psamf {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        # Commands that can continue say how (train, pretrain-personality catch it themselves).
        print(f"psamf {args.command}: interrupted", file=sys.stderr)
        return exit_status(stop)


def one_line(err: BaseException) -> str:
    """The error's message on one line (an OSError without one says what failed where)."""
    text = str(err)
    if isinstance(err, OSError) and not isinstance(err, PsamfError) and err.filename:
        text = f"{err.filename}: {err.strerror or text}"
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
