"""``psamf train``: train and evaluate PSA-MF (or a baseline) on a dataset, one or more seeds.

Examples::

    psamf train                                   # PSA-MF + MiniLM on the built-in sample (CPU)
    psamf train --preset mosi_authors --seeds 1,2,3   # the authors' training settings (100 epochs)
    psamf train --data mosi model.model_type=text_finetune epochs=8
    psamf train --data mosi model.use_prefusion=false optim.lr_encoder=3e-5
    psamf train --resume runs/cpu-sample-psamf-20260101-120000
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from psamf.commands._args import add_command
from psamf.errors import AlreadyExistsError, InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from psamf.training.presets import DEFAULT_PRESET, PRESETS

    p = add_command(
        subparsers, "train", doc=__doc__,
        help="train and evaluate a model (checkpoint chosen on validation MAE, test once)",
        epilog="Overrides are KEY=VALUE with dotted keys, e.g. epochs=3 model.align_layer=4 "
               "optim.lr_encoder=3e-5 data.limit_train=64; an unknown key lists the valid ones.",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--data", default=None,
                   help="sample (default of the cpu preset), mosi, mosei or a dataset folder")
    p.add_argument("--root", default=None,
                   help="folder holding named datasets "
                        "(default $PSAMF_DATA_ROOT or ../shared/data)")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                   help=f"starting settings (default {DEFAULT_PRESET})")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 1,2,3")
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs folder (default runs/)")
    p.add_argument("--name", default=None, help="run folder name (default: preset-data-model-time)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN",
                   help="continue an interrupted run folder (its saved config is used)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """Preset, then --data/--root/--seeds, then KEY=VALUE overrides (later wins)."""
    from psamf.training.config import apply_overrides, parse_overrides
    from psamf.training.presets import get_preset

    config = get_preset(args.preset)
    flags: dict = {}
    if args.data is not None:
        flags["data.name"] = args.data
    if args.root is not None:
        flags["data.root"] = args.root
    if args.seeds is not None:
        flags.update(parse_overrides([f"seeds={args.seeds}"]))
    if args.no_progress:
        flags["progress"] = False
    flags.update(parse_overrides(list(args.overrides)))
    return apply_overrides(config, flags) if flags else config


def run(args: argparse.Namespace) -> int:
    from psamf.training.prepare import prepare
    from psamf.training.reports import SYNTHETIC_BANNER, markdown_table
    from psamf.training.runs import (
        check_same_personality,
        check_writable,
        create_run,
        default_run_name,
        load_config,
        quiet_transformers,
        train_run,
    )

    quiet_transformers(getattr(args, "verbose", False))

    command = "psamf " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.resume is not None:
        if args.overrides or args.data or args.root or args.seeds:
            raise InputError(
                "--resume continues a run with its saved config; drop the overrides / --data / "
                "--root / --seeds (start a new run to change settings)"
            )
        folder = args.resume
        config = load_config(folder)
        check_writable(folder)
        prepared = prepare(config)
        check_same_personality(folder, prepared)
        log.info("resuming run %s", folder)
    else:
        config = build_config(args)
        name = args.name or default_run_name(config, time.strftime("%Y%m%d-%H%M%S"))
        folder = args.out / name
        check_writable(args.out)
        if folder.exists():
            raise AlreadyExistsError(
                f"{folder}: run folder already exists; continue it with --resume {folder} or "
                "pass another --name"
            )
        prepared = prepare(config)  # data problems surface before anything is written
        create_run(folder, prepared.config, command=command, prepared=prepared)
        log.info("run folder %s", folder)
    print(prepared.dataset.summary())
    used = {name: len(split) for name, split in prepared.raw.items()}
    if any(used[name] != len(prepared.dataset.splits[name]) for name in used):
        print("  used (data.limit_*): " + ", ".join(f"{k} {v}" for k, v in used.items()))
    summary = train_run(folder, prepared)
    print()
    if prepared.dataset.synthetic:
        print(f"*** {SYNTHETIC_BANNER} ***")
    title = f"Test metrics, {folder} (checkpoint chosen on validation)"
    print(markdown_table(summary, title=title))
    print(f"details: {folder / 'summary.md'}")
    return 0
