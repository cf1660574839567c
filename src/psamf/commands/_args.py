"""Argument pieces several subcommands share, so their ``--help`` says the same thing."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_command(
    subparsers: argparse._SubParsersAction, name: str, *, help: str, doc: str | None, **kwargs
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` shows its module docstring (with the examples) as written."""
    return subparsers.add_parser(
        name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    """The positional RUN: a run folder that ``psamf train`` wrote."""
    parser.add_argument("run", type=Path, help="run folder written by psamf train")


def add_encoder_override(parser: argparse.ArgumentParser) -> None:
    """Optional ``personality_encoder=PATH``: where the run's personality encoder is now, when
    the folder it was trained with moved (it must be a copy with the same content identity)."""
    parser.add_argument(
        "overrides", nargs="*", metavar="personality_encoder=PATH",
        help="a copy of the run's personality encoder, when the folder it recorded moved "
             "(refused unless its content identity is the one run.json records)",
    )


def encoder_override_of(args: argparse.Namespace) -> str | None:
    """The PATH of ``personality_encoder=PATH`` (anything else given there is refused)."""
    from psamf.errors import InputError
    from psamf.training.runs import ENCODER_KEY, encoder_override

    path, others = encoder_override(list(getattr(args, "overrides", None) or []))
    if others:
        raise InputError(f"{others[0]}: {args.command} accepts only {ENCODER_KEY}=PATH after the "
                         "run folder (the run's saved config is used as it is)")
    return path
