"""Argument pieces several subcommands share, so their ``--help`` says the same thing."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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


ENCODER_FLAG = "--personality-encoder PATH"


def add_encoder_override(parser: argparse.ArgumentParser) -> None:
    """``--personality-encoder PATH``: where the run's personality encoder is now, when the folder
    it was trained with moved (``psamf train --resume`` takes ``personality_encoder=PATH``)."""
    parser.add_argument(
        "--personality-encoder", default=None, metavar="PATH",
        help="a copy of the run's personality encoder, when the folder run.json recorded moved "
             "(refused unless its content identity is the one run.json records)",
    )


def add_preset_argument(parser: argparse.ArgumentParser, default: str, presets: Any) -> None:
    """``--preset NAME|FILE``: a registered training preset or a preset file (a saved config,
    e.g. ``psamf tune``'s ``best_preset.yaml``); checked by ``get_preset``."""
    parser.add_argument(
        "--preset", default=default, metavar="NAME|FILE",
        help=f"starting settings: one of {', '.join(sorted(presets))} (default {default}), or a "
             "preset file (.yaml: a run's config.yaml, or the best_preset.yaml psamf tune "
             "exports)",
    )
