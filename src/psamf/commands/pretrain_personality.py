"""``psamf pretrain-personality``: fine-tune a text encoder to read the Big Five.

Writes a Hugging Face encoder folder (weights, config, tokenizer) plus ``trait_head.*``,
``metrics.json``, ``config.yaml`` (the resolved settings) and a model card; PSA-MF uses it as its
personality encoder.

Examples::

    psamf pretrain-personality --data first_impressions          # the benchmarked recipe
    psamf pretrain-personality --data DIR --preset quick --out /tmp/p
    psamf pretrain-personality --data DIR epochs=2 encoder_lr=3e-5 pooling=first
    psamf pretrain-personality --resume artifacts/personality-minilm

Settings come from --preset, then --data/--backbone, then KEY=VALUE overrides anywhere among the
options (later wins). Work in progress lives in <out>.partial/ with its config.yaml; --resume OUT
continues it with that config (running the same settings again also continues it). The former
flags are overrides now: --epochs 4 --encoder-lr 5e-5 --no-baselines became epochs=4
encoder_lr=5e-5 baselines=false. An unfinished folder from before --resume (no config.yaml) must
be finished by the psamf that started it, or deleted.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shlex
import sys
from pathlib import Path

from psamf.commands._args import add_command
from psamf.device import DEVICES_HELP
from psamf.errors import InputError


def default_out(backbone: str) -> Path:
    """``artifacts/personality-<backbone name>`` (e.g. artifacts/personality-minilm)."""
    name = Path(str(backbone).rstrip("/")).name or "encoder"
    return Path("artifacts") / f"personality-{name}"


def register(subparsers: argparse._SubParsersAction) -> None:
    from psamf.personality.config import DEFAULT_PRESET, PRESETS, PretrainConfig

    keys = ", ".join(f.name for f in dataclasses.fields(PretrainConfig))
    p = add_command(
        subparsers, "pretrain-personality", doc=__doc__,
        help="fine-tune a text encoder + Big Five head on First Impressions transcripts",
        epilog=f"Overrides are KEY=VALUE; keys: {keys}. An unknown key lists the valid ones.",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                   help=f"starting settings (default {DEFAULT_PRESET}, the benchmarked recipe)")
    p.add_argument("--data", default=None,
                   help="folder with the ChaLearn First Impressions V2 annotation_*/transcription_*"
                        " pickles, or 'first_impressions' (under $PSAMF_DATA_ROOT, else "
                        "../shared/data); same as data=...")
    p.add_argument("--backbone", default=None,
                   help="encoder to fine-tune: 'minilm', 'mpnet', a hub id or a local folder; "
                        "same as backbone=...")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: artifacts/personality-<backbone name>)")
    p.add_argument("--resume", type=Path, default=None, metavar="OUT",
                   help="continue the unfinished run of OUT (OUT.partial/) with its saved config")
    p.add_argument("--device", default="auto", help=DEVICES_HELP)
    p.add_argument("--stop-after-epochs", type=int, default=None,
                   help="end this call after N completed epochs, keeping <out>.partial/ to "
                        "resume (for time-sliced jobs)")
    p.add_argument("--finish-early", action="store_true",
                   help="train no further: write the output from the best epoch completed so far "
                        "in <out>.partial/ (with --resume OUT)")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """Preset, then --data/--backbone, then KEY=VALUE overrides (later wins)."""
    from psamf.personality.config import get_preset
    from psamf.training.config import with_flags_and_overrides

    config = get_preset(args.preset)
    flags: dict = {}
    if args.data is not None:
        flags["data"] = args.data
    if args.backbone is not None:
        flags["backbone"] = args.backbone
    return with_flags_and_overrides(config, flags, args.overrides)


def run(args: argparse.Namespace) -> int:
    from psamf.cli import INTERRUPTED
    from psamf.personality.pretrain import pretrain_personality, resume_pretraining
    from psamf.training.runs import quiet_transformers

    quiet_transformers(getattr(args, "verbose", False))
    command = "psamf " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    options = dict(device=args.device, stop_after_epochs=args.stop_after_epochs,
                   finish_early=args.finish_early, command=command)
    if args.resume is not None:
        if args.overrides or args.data or args.backbone or args.out:
            raise InputError(
                "--resume continues a run with its saved config.yaml; drop the overrides / "
                "--data / --backbone / --out (start a new run to change settings)"
            )
        out = args.resume
        call = functools.partial(resume_pretraining, out, **options)
    else:
        config = build_config(args)
        out = args.out if args.out is not None else default_out(config.backbone)
        call = functools.partial(pretrain_personality, config, out, **options)
    resume = shlex.join(["psamf", "pretrain-personality", "--resume", str(out)])
    try:
        metrics = call()
    except KeyboardInterrupt:
        # Every finished epoch is checkpointed in <out>.partial/ (atomically).
        print(f"psamf pretrain-personality: interrupted; continue from the last finished epoch "
              f"with: {resume}", file=sys.stderr)
        return INTERRUPTED
    if metrics is None:
        print(f"stopped early; continue with: {resume}")
        return 0
    test = metrics["test"]
    print(f"wrote {out}")
    for key, label in (("constant", "constant"), ("frozen_ridge", "frozen+ridge"),
                       ("fine_tuned", "fine-tuned")):
        if key in test:
            print(f"test {label:<13} acc_mean {test[key]['acc_mean']:.4f}  "
                  f"r2_mean {test[key]['r2_mean']:.4f}")
    return 0
