"""The ``psamf`` command line: a thin layer over the library.

Each subcommand lives in ``psamf.commands.<name>`` and exposes ``register(subparsers)``; the
parser is assembled from ``COMMANDS`` so that ``--help`` always lists what exists.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from psamf import __version__
from psamf.errors import PsamfError

# Subcommand modules, in the order --help lists them.
COMMANDS: tuple[str, ...] = ("data", "train", "evaluate", "predict", "pretrain_personality")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psamf",
        description="PSA-MF multimodal sentiment analysis: data, training, evaluation, prediction.",
    )
    parser.add_argument("--version", action="version", version=f"psamf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"psamf.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    except (PsamfError, OSError) as err:
        # User errors (and the machine's: disk full, permissions): one line, no traceback.
        print(f"psamf {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2


def one_line(err: BaseException) -> str:
    """The error's message on one line (an OSError without one says what failed where)."""
    text = str(err)
    if isinstance(err, OSError) and not isinstance(err, PsamfError) and err.filename:
        text = f"{err.filename}: {err.strerror or text}"
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
