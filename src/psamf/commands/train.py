"""``psamf train``: train and evaluate PSA-MF (or a baseline) on a dataset, one or more seeds.

Examples::

    psamf train                                   # PSA-MF + MiniLM on the built-in sample (CPU)
    psamf train --preset mosi_authors --seeds 1,2,3   # the authors' training settings (100 epochs)
    psamf train --data mosi model.model_type=text_finetune epochs=8
    psamf train --data mosi model.use_prefusion=false optim.encoder_lr=3e-5
    psamf train --resume runs/cpu-sample-psamf-20260101-120000
    psamf train --resume runs/my-run personality_encoder=/new/place/personality-minilm  # moved

Every check (data, config, device and its precision, model construction) runs before the run
folder is made, so a refused run leaves nothing in --out. Ctrl-C stops with exit status 130 and
prints the ``--resume`` command that continues the run from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

from psamf.commands._args import add_command
from psamf.errors import AlreadyExistsError, InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from psamf.models import list_models
    from psamf.training.presets import DEFAULT_PRESET, PRESETS

    p = add_command(
        subparsers, "train", doc=__doc__,
        help="train and evaluate a model (checkpoint chosen on validation MAE, test once)",
        epilog="Overrides are KEY=VALUE with dotted keys, anywhere among the options, e.g. "
               "epochs=3 model.align_layer=4 optim.encoder_lr=3e-5 data.limit_train=64; an "
               "unknown key lists the valid ones. "
               f"model.model_type is one of: {', '.join(list_models())}. "
               "precision=fp32|bf16|fp16 (default fp32; fp16 on CUDA only) autocasts forward "
               "and loss; compile=true compiles the model with torch.compile.",
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
    p.add_argument("--labels-encoding", default=None, metavar="ENCODING",
                   help="text encoding of the dataset's label.csv (default utf-8; e.g. latin-1, "
                        "cp1252, utf-16); same as data.labels_encoding=ENCODING")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN",
                   help="continue an interrupted run folder (its saved config is used)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """Preset, then --data/--root/--seeds, then KEY=VALUE overrides (later wins)."""
    from psamf.training.config import parse_overrides, with_flags_and_overrides
    from psamf.training.presets import get_preset

    config = get_preset(args.preset)
    flags: dict = {}
    if args.data is not None:
        flags["data.name"] = args.data
    if args.root is not None:
        flags["data.root"] = args.root
    if args.labels_encoding is not None:
        flags["data.labels_encoding"] = args.labels_encoding
    if args.seeds is not None:
        flags.update(parse_overrides([f"seeds={args.seeds}"]))
    if args.no_progress:
        flags["progress"] = False
    return with_flags_and_overrides(config, flags, args.overrides)


def preflight(prepared) -> None:
    """Checks that need the data: build the model once (layer ranges such as model.align_layer
    against the encoder's depth, widths, architecture) so that a refusal comes before the run
    folder exists rather than at the first seed."""
    from psamf.models import build_model

    build_model(prepared.config.model)


def check_device_settings(config, device) -> None:
    """housekeeping.precision / .compile against the resolved device (fp16 on a CPU, say)."""
    from psamf.training.precision import check_compile, check_precision

    check_precision(config.housekeeping.precision, device)
    check_compile(config.housekeeping.compile, device)


def run(args: argparse.Namespace) -> int:
    from psamf.device import resolve_device
    from psamf.training.prepare import prepare
    from psamf.training.reports import SYNTHETIC_BANNER, markdown_table
    from psamf.training.run_info import load_average, record_session
    from psamf.training.runs import (
        check_writable,
        create_run,
        default_run_name,
        encoder_override,
        load_config,
        prepare_for_run,
        quiet_transformers,
        train_run,
    )

    quiet_transformers(getattr(args, "verbose", False))

    started, load_at_start = time.time(), load_average()
    command = "psamf " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.resume is not None:
        moved_encoder, others = encoder_override(list(args.overrides))
        if others or args.data or args.root or args.seeds or args.labels_encoding:
            raise InputError(
                "--resume continues a run with its saved config; drop the overrides / --data / "
                "--root / --seeds / --labels-encoding (only personality_encoder=PATH, naming a "
                "moved copy of the run's encoder, is accepted; start a new run to change settings)"
            )
        folder = args.resume
        config = load_config(folder)  # a missing run folder is named before anything else
        check_writable(folder)
        # made on a GPU machine, resumed on a CPU one
        device = resolve_device(config.housekeeping.device)
        check_device_settings(config, device)
        prepared = prepare_for_run(folder, personality_encoder=moved_encoder)
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
        # before minutes of data preparation, not after
        device = resolve_device(config.housekeeping.device)
        check_device_settings(config, device)
        prepared = prepare(config)  # data problems surface before anything is written
        preflight(prepared)
        try:
            create_run(folder, prepared.config, command=command, prepared=prepared)
        except KeyboardInterrupt:
            return _interrupted(folder)
        log.info("run folder %s", folder)
    print(prepared.dataset.summary())
    used = {name: len(split) for name, split in prepared.raw.items()}
    if any(used[name] != len(prepared.dataset.splits[name]) for name in used):
        print("  used (data.limit_*): " + ", ".join(f"{k} {v}" for k, v in used.items()))
    try:
        summary = train_run(folder, prepared)
    except KeyboardInterrupt:
        return _interrupted(folder)
    record_session(folder, command=command, started=started, resumed=args.resume is not None,
                   device=str(device), load_at_start=load_at_start)
    print()
    if prepared.dataset.synthetic:
        print(f"*** {SYNTHETIC_BANNER} ***")
    title = f"Test metrics, {folder} (checkpoint chosen on validation)"
    print(markdown_table(summary, title=title))
    # datasets joined by '+': each one's share of the test split, as summary.json records it
    by_dataset = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get(
        "test_by_dataset", {})
    for name in prepared.dataset.parts:  # the order they were joined in (the JSON sorts keys)
        table = by_dataset[name]
        print(markdown_table(table, title=f"Test, {name} alone ({table['utterances']} "
                                          "utterances)"))
    print(f"details: {folder / 'summary.md'}")
    return 0


def _interrupted(folder: Path) -> int:
    """Ctrl-C: the last checkpoint is on disk (writes are atomic); say how to go on from it."""
    from psamf.cli import INTERRUPTED

    if not (folder / "run.json").is_file():  # stopped inside create_run's few milliseconds
        what = f"delete {folder} and start again" if folder.exists() else "nothing was written"
        print(f"psamf train: interrupted before the run folder was complete; {what}",
              file=sys.stderr)
        return INTERRUPTED
    resume = shlex.join(["psamf", "train", "--resume", str(folder)])
    print(f"psamf train: interrupted; continue from the last checkpoint with: {resume}",
          file=sys.stderr)
    return INTERRUPTED
