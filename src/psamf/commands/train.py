"""``psamf train``: train and evaluate PSA-MF (or a baseline) on a dataset, one or more seeds.

Examples::

    psamf train                                   # PSA-MF + MiniLM on the built-in sample (CPU)
    psamf train --preset mosi_authors --seeds 1,2,3   # the authors' training settings (100 epochs)
    psamf train --data mosi model.model_type=text_finetune epochs=8
    psamf train --data mosi model.use_prefusion=false optim.encoder_lr=3e-5
    psamf train --resume runs/cpu-sample-psamf-20260101-120000
    psamf train --resume runs/my-run personality_encoder=/new/place/personality-minilm  # moved
    psamf train --nproc 2 --data mosi             # DDP: 2 processes (torchrun), batch_size global
    torchrun --nproc_per_node 4 -m psamf train --data mosi   # the same, launched by hand
    psamf train --preset runs/tune/my-study/best_preset.yaml   # the best trial of psamf tune

Every check (data, config, device and its precision, model construction) runs before the run
folder is made, so a refused run leaves nothing in --out. Ctrl-C stops with exit status 130 and
prints the ``--resume`` command that continues the run from its last checkpoint; SIGTERM (a
scheduler's stop: SLURM, Kubernetes, ``kill``) does the same with exit status 143. Each call is
recorded in the run folder's run.json (``sessions``) from its start, kept current while it runs,
so a stopped or killed call still counts (see ``psamf.training.run_info``).

Distributed data parallel (``--nproc N`` or torchrun): gloo on CPU, NCCL on CUDA (one GPU per
process); ``batch_size`` is the global batch, shared out so that N processes train on the batches
one process does; metrics are computed over whole splits; only rank 0 writes. With --nproc each
process gets cores // N torch threads unless OMP_NUM_THREADS is set (torchrun alone sets 1). See
docs/DESIGN.md, "Distributed data parallel".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from psamf.commands._args import add_command, add_preset_argument
from psamf.errors import AlreadyExistsError, InputError

if TYPE_CHECKING:
    from psamf.training.distributed import World
    from psamf.training.run_info import Session

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    add_preset_argument(p, DEFAULT_PRESET, PRESETS)
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 1,2,3")
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs folder (default runs/)")
    p.add_argument("--name", default=None, help="run folder name (default: preset-data-model-time)")
    p.add_argument("--labels-encoding", default=None, metavar="ENCODING",
                   help="text encoding of the dataset's label.csv (default utf-8; e.g. latin-1, "
                        "cp1252, utf-16); same as data.labels_encoding=ENCODING")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN",
                   help="continue an interrupted run folder (its saved config is used)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--nproc", default=None, metavar="N",
                   help="train with N processes on this machine (DDP, launched through torchrun; "
                        "batch_size stays the global batch); default: one process")
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
    if getattr(args, "seeds", None) is not None:  # psamf tune has no --seeds
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


def resume_config(args: argparse.Namespace):
    """``--resume RUN``: the run's saved config, and the moved personality encoder named by
    ``personality_encoder=PATH`` (None without it); any other setting is refused."""
    from psamf.training.runs import encoder_override, load_config

    moved_encoder, others = encoder_override(list(args.overrides))
    if others or args.data or args.root or args.seeds or args.labels_encoding:
        raise InputError(
            "--resume continues a run with its saved config; drop the overrides / --data / "
            "--root / --seeds / --labels-encoding (only personality_encoder=PATH, naming a "
            "moved copy of the run's encoder, is accepted; start a new run to change settings)"
        )
    return load_config(args.resume), moved_encoder  # a missing run folder is named first


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less ``--nproc N`` / ``--nproc=N`` (what each launched process is given)."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            out.append(word)
    return out


def launch(argv: list[str], nproc: int) -> int:
    """Run this command in ``nproc`` processes on this machine through torchrun's launcher
    (``torch.distributed.launcher``, what ``torchrun --standalone`` runs: a rendezvous on a free
    loopback port); return the first failed process's exit status (the launcher ends the others),
    its message already printed by that process, without torchrun's failure report."""
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from psamf.training.distributed import threads_per_process

    # torchrun would give each process 1 thread; cores // N, unless the user said otherwise
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_process(nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0)
    log.info("launching %d processes: psamf %s", nproc, shlex.join(without_nproc(argv)))
    try:
        elastic_launch(config, sys.executable)("-m", "psamf", *without_nproc(argv))
    except ChildFailedError as err:
        code = err.get_first_failure()[1].exitcode
        return code if code > 0 else 128 - code  # killed by signal S: the shell's 128 + S
    except SignalException as err:  # Ctrl-C reached the processes too; rank 0 says how to resume
        return 128 + int(err.sigval)  # the shell's status for a process ended by that signal
    return 0


def check_device_settings(config, device) -> None:
    """housekeeping.precision / .compile against the resolved device (fp16 on a CPU, say)."""
    from psamf.training.precision import check_compile, check_precision

    check_precision(config.housekeeping.precision, device)
    check_compile(config.housekeeping.compile, device)


def run(args: argparse.Namespace) -> int:
    from psamf.training.distributed import check_gpus, check_nproc

    if args.nproc is not None:
        nproc = check_nproc(args.nproc)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InputError("--nproc: this process was already launched by torchrun; drop "
                             "--nproc (torchrun's --nproc_per_node says how many)")
        if nproc > 1:
            # a bad override or too few GPUs is refused here, once, not by every process
            config = build_config(args) if args.resume is None else resume_config(args)[0]
            check_gpus(config.housekeeping.device, nproc)
            return launch(args.argv, nproc)
    from psamf.cli import sigterm_interrupts

    with sigterm_interrupts():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from psamf.device import resolve_device
    from psamf.training.distributed import init_world
    from psamf.training.prepare import prepare
    from psamf.training.reports import SYNTHETIC_BANNER, markdown_table
    from psamf.training.run_info import Session, load_average
    from psamf.training.runs import (
        check_writable,
        create_run,
        default_run_name,
        prepare_for_run,
        quiet_transformers,
        train_run,
    )

    quiet_transformers(getattr(args, "verbose", False))

    # cli.main's start, before its imports; load_at_start: the machine as the call found it
    started, load_at_start = getattr(args, "started", time.time()), load_average()
    command = "psamf " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.resume is not None:
        folder = args.resume
        config, moved_encoder = resume_config(args)
        check_writable(folder)
        world = init_world(config.housekeeping.device)
        # made on a GPU machine, resumed on a CPU one
        device = world.device or resolve_device(config.housekeeping.device)
        check_device_settings(config, device)
        prepared = None  # read once this call is recorded: the reading takes time too
    else:
        config = build_config(args)
        world = init_world(config.housekeeping.device)
        # every process must write into one folder: rank 0's clock names it
        name = world.broadcast(
            args.name or default_run_name(config, time.strftime("%Y%m%d-%H%M%S")))
        folder = args.out / name
        # before minutes of data preparation, not after
        device = world.device or resolve_device(config.housekeeping.device)
        check_device_settings(config, device)
        if world.is_main:
            def make_run():
                check_writable(args.out)
                if folder.exists():
                    raise AlreadyExistsError(
                        f"{folder}: run folder already exists; continue it with --resume "
                        f"{folder} or pass another --name"
                    )
                prepared = prepare(config)  # data problems surface before anything is written
                preflight(prepared)
                create_run(folder, prepared.config, command=command, prepared=prepared)
                return prepared

            try:
                prepared = _tell_others(world, make_run)
            except KeyboardInterrupt as stop:
                return _interrupted(folder, stop, world)
            log.info("run folder %s", folder)
        else:
            _follow_rank0(world)
            prepared = prepare(config)
    # Rank 0 records this call in run.json as soon as the run folder is complete and keeps it
    # current, so that a call that never finishes (stopped, killed) still counts.
    session = Session(folder, command=command, started=started, resumed=args.resume is not None,
                      device=str(device), load_at_start=load_at_start,
                      world_size=world.size) if world.is_main else None
    try:
        if prepared is None:
            # rank 0 first (it fills the P cache the others then read); the others follow it
            if world.is_main:
                prepared = _tell_others(world, lambda: prepare_for_run(
                    folder, personality_encoder=moved_encoder))
            else:
                _follow_rank0(world)
                prepared = prepare_for_run(folder, personality_encoder=moved_encoder)
            log.info("resuming run %s", folder)
        if world.is_main:
            print(prepared.dataset.summary())
            used = {name: len(split) for name, split in prepared.raw.items()}
            if any(used[name] != len(prepared.dataset.splits[name]) for name in used):
                print("  used (data.limit_*): " + ", ".join(f"{k} {v}" for k, v in used.items()))
        summary = train_run(folder, prepared, world=world,
                            on_step=session.tick if session else None,
                            on_epoch=(lambda _: session.save()) if session else None)
    except KeyboardInterrupt as stop:
        return _interrupted(folder, stop, world, session)
    except Exception as err:
        if session is not None:  # the status psamf.cli.main ends with
            from psamf.cli import USER_ERRORS

            session.save("failed", 2 if isinstance(err, USER_ERRORS) else 1)
        raise
    if session is None:
        world.close()
        return 0
    session.save("finished", 0)
    world.close()
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


def _tell_others(world: World, work: Callable[[], T]) -> T:
    """Rank 0: run ``work`` and tell the other processes whether it succeeded (they wait)."""
    try:
        value = work()
    except BaseException:
        world.broadcast(False)
        raise
    world.broadcast(True)
    return value


def _follow_rank0(world: World) -> None:
    """The other ranks: wait for ``_tell_others``; when rank 0 failed (it prints why), stop."""
    if not world.broadcast(None):
        raise SystemExit(2)


def _interrupted(folder: Path, stop: KeyboardInterrupt, world: World | None = None,
                 session: Session | None = None) -> int:
    """Ctrl-C or SIGTERM: the last checkpoint is on disk (writes are atomic); record the call
    as interrupted and say how to go on from it. The shell's status for the signal."""
    from psamf.cli import exit_status, ignore_sigterm

    ignore_sigterm()  # a launcher may follow a Ctrl-C with SIGTERM: finish saying how to resume
    status = exit_status(stop)
    if world is not None and not world.is_main:
        return status  # rank 0 says it once
    if session is not None:
        session.save("interrupted", status)
    if not (folder / "run.json").is_file():  # stopped inside create_run's few milliseconds
        what = f"delete {folder} and start again" if folder.exists() else "nothing was written"
        print(f"psamf train: interrupted before the run folder was complete; {what}",
              file=sys.stderr)
        return status
    processes = ["--nproc", str(world.size)] if world is not None and world.distributed else []
    resume = shlex.join(["psamf", "train", "--resume", str(folder), *processes])
    print(f"psamf train: interrupted; continue from the last checkpoint with: {resume}",
          file=sys.stderr)
    return status
