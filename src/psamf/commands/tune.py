"""``psamf tune``: search training settings with Optuna, on validation MAE alone.

Examples::

    psamf tune --data mosi --trials 20 --study mosi-lr          # PSA-MF's default search space
    psamf tune --data mosi --trials 20 --study mosi-lr          # again, in a second terminal:
                                                                # two workers share the study
    psamf tune --data mosi --trials 8 --study small epochs=3 data.limit_train=500 \\
        --space optim.encoder_lr=log:1e-5:2e-4 --space batch_size=choice:16,32
    psamf tune --data mosi --trials 50 --study big \\
        --storage postgresql://user@db-host/optuna               # workers on several machines
    psamf train --preset runs/tune/small/best_preset.yaml --data mosi --seeds 1,2,3

Each trial trains the base config (--preset, --data, key=value overrides) with the sampled
settings into OUT/STUDY/trial-NNNN (an ordinary run folder), on the train and valid splits only:
the test split is dropped when the data is read and never evaluated. Its value is the validation
MAE of the checkpoint the trainer selects; each epoch's validation MAE goes to the pruner. --trials
N counts over every worker sharing the study (run the same command again to add a worker; a
SQLite study shares exactly N between the workers of one machine). When a worker stops it writes
OUT/STUDY/best_preset.yaml (for psamf train --preset), study.json and the plots.

Search space (--space, repeatable; replaces the default): KEY=float:LOW:HIGH, KEY=log:LOW:HIGH,
KEY=int:LOW:HIGH or KEY=choice:A,B,... over dotted config keys. Default (PSA-MF's):
    {default_space}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import shlex
import sys
from pathlib import Path

from psamf.commands._args import add_command, add_preset_argument
from psamf.errors import InputError
from psamf.tuning.space import DEFAULT_SPACE
from psamf.tuning.study import PRUNERS, StudySettings

log = logging.getLogger(__name__)

DEFAULTS = StudySettings(name="psamf", folder=Path("."))


def register(subparsers: argparse._SubParsersAction) -> None:
    from psamf.training.presets import DEFAULT_PRESET, PRESETS

    doc = (__doc__ or "").replace("{default_space}", "\n    ".join(DEFAULT_SPACE))
    p = add_command(
        subparsers, "tune", doc=doc,
        help="search training settings with Optuna on validation MAE (several workers can "
             "share a study); export the best as a preset",
        epilog="Fixed settings are KEY=VALUE overrides as for psamf train, anywhere among the "
               "options. Needs the tune extra (pip install 'psamf[tune]').",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="fixed config overrides for every trial")
    p.add_argument("--data", default=None, help="sample, mosi, mosei or a dataset folder")
    p.add_argument("--root", default=None,
                   help="folder holding named datasets "
                        "(default $PSAMF_DATA_ROOT or ../shared/data)")
    add_preset_argument(p, DEFAULT_PRESET, PRESETS)
    p.add_argument("--labels-encoding", default=None, metavar="ENCODING",
                   help="text encoding of the dataset's label.csv (default utf-8)")
    p.add_argument("--trials", type=int, default=DEFAULTS.trials,
                   help=f"trials the study ends with, over all workers (default "
                        f"{DEFAULTS.trials})")
    p.add_argument("--study", default=DEFAULTS.name, metavar="NAME",
                   help=f"study name, shared by its workers (default {DEFAULTS.name})")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna storage URL (default sqlite:///OUT/STUDY/study.db; e.g. "
                        "postgresql://user@host/db or mysql+pymysql://user@host/db to share "
                        "a study between machines)")
    p.add_argument("--out", type=Path, default=Path("runs/tune"),
                   help="parent of the study folder OUT/STUDY (default runs/tune)")
    p.add_argument("--space", action="append", default=[], metavar="KEY=KIND:ARGS",
                   help="one searched setting (repeat; replaces the default space), KIND float, "
                        "log, int or choice, e.g. optim.encoder_lr=log:1e-5:2e-4 "
                        "batch_size=choice:16,32")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help=f"the sampler's seed (default {DEFAULTS.seed})")
    p.add_argument("--pruner", default=DEFAULTS.pruner, choices=PRUNERS,
                   help="median: stop a trial whose epoch-k validation MAE is worse than the "
                        "median of other trials at epoch k; none: never prune "
                        f"(default {DEFAULTS.pruner})")
    p.add_argument("--prune-warmup", type=int, default=DEFAULTS.prune_warmup, metavar="EPOCHS",
                   help=f"epochs every trial trains before it may be pruned "
                        f"(default {DEFAULTS.prune_warmup})")
    p.add_argument("--prune-startup", type=int, default=DEFAULTS.prune_startup, metavar="N",
                   help=f"finished trials before any pruning (default {DEFAULTS.prune_startup})")
    p.add_argument("--heartbeat", type=int, default=DEFAULTS.heartbeat, metavar="SECONDS",
                   help="a running trial's heartbeat; a trial silent for twice as long (its "
                        "worker died) is failed and retried (default "
                        f"{DEFAULTS.heartbeat}; 0 = off: it stays RUNNING)")
    p.add_argument("--retries", type=int, default=DEFAULTS.retries,
                   help="times a dead worker's trial is re-queued with the same parameters "
                        f"(default {DEFAULTS.retries})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def folder_name(study: str) -> str:
    """The study folder's name: the study name with anything but [A-Za-z0-9_.-] as '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", study.strip()).strip("-.") or "study"


def base_identity(config) -> dict:
    """What every worker of a study must share: the base config without housekeeping (device,
    progress, cache may differ between machines), as JSON (tuples as lists)."""
    data = config.to_dict()
    for key in ("format", "psamf_version", "housekeeping"):
        data.pop(key, None)
    return json.loads(json.dumps(data))


def run(args: argparse.Namespace) -> int:
    from psamf.commands.train import build_config
    from psamf.device import resolve_device
    from psamf.training.config import parse_overrides
    from psamf.training.prepare import load_multimodal
    from psamf.training.runs import check_writable, quiet_transformers
    from psamf.tuning.export import export_study
    from psamf.tuning.space import parse_space
    from psamf.tuning.study import open_study, require_optuna, shown_url, work
    from psamf.tuning.trial import make_objective

    require_optuna()  # one line, before anything else, when the extra is missing
    settings = StudySettings(
        name=args.study, folder=args.out / folder_name(args.study), storage=args.storage,
        trials=args.trials, seed=args.seed, pruner=args.pruner, prune_warmup=args.prune_warmup,
        prune_startup=args.prune_startup, heartbeat=args.heartbeat, retries=args.retries,
    )
    settings.validate()
    base = build_config(args)
    base = dataclasses.replace(base, preset=f"tune-{folder_name(args.study)}")
    if len(base.seeds) != 1:
        raise InputError(f"psamf tune trains one seed per trial; give one (seeds=N), got "
                         f"{list(base.seeds)}")
    space = parse_space(args.space, base, fixed=list(parse_overrides(list(args.overrides))))
    check_writable(args.out)
    resolve_device(base.housekeeping.device)  # before minutes of data loading
    quiet_transformers(getattr(args, "verbose", False))
    # Read once per worker; every trial drops its test split (prepare(test=False)).
    dataset = load_multimodal(base.data.name, base.data.root, base.data.labels_encoding)
    settings.folder.mkdir(parents=True, exist_ok=True)
    study = open_study(settings, {"search_space": [d.text() for d in space],
                                  "base_config": base_identity(base)})
    log.info("study %r in %s: %d trial(s) wanted; space %s", settings.name,
             shown_url(settings.storage_url()), settings.trials,
             " ".join(d.text() for d in space))
    command = "psamf " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    objective = make_objective(base, space, dataset, settings.folder, command=command)
    ran = work(study, settings, objective)
    preset = export_study(study, base, settings.folder, settings.storage_url())
    states = {}
    for trial in study.trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    print(f"this worker ran {ran} trial(s); study {settings.name!r} holds "
          + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    if preset is not None:
        best = study.best_trial
        print(f"best: trial {best.number}, validation MAE {best.value:.4f}, "
              + " ".join(f"{k}={v}" for k, v in best.params.items()))
        print(f"preset: {preset} (psamf train --preset {preset})")
    print(f"details: {settings.folder / 'study.json'}")
    return 0
