"""``psamf pretrain-personality``: fine-tune a text encoder to read the Big Five.

Writes a Hugging Face encoder folder (weights, config, tokenizer) plus ``trait_head.*``,
``metrics.json`` and a model card; PSA-MF uses it as its personality encoder.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from psamf.backbones import DEFAULT_BACKBONE
from psamf.device import DEVICES_HELP
from psamf.personality.pooling import POOLINGS


def _defaults():
    from psamf.personality.config import PretrainConfig

    return PretrainConfig()


def default_out(backbone: str) -> Path:
    """``artifacts/personality-<backbone name>`` (e.g. artifacts/personality-minilm)."""
    name = Path(str(backbone).rstrip("/")).name or "encoder"
    return Path("artifacts") / f"personality-{name}"


def register(subparsers: argparse._SubParsersAction) -> None:
    d = _defaults()
    p = subparsers.add_parser(
        "pretrain-personality",
        help="fine-tune a text encoder + Big Five head on First Impressions transcripts",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True,
                   help="folder with the ChaLearn First Impressions V2 annotation_*/transcription_*"
                        " pickles, or 'first_impressions' (under $PSAMF_DATA_ROOT, else "
                        "../shared/data)")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE,
                   help="encoder to fine-tune: 'minilm', 'mpnet', a hub id or a local folder")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: artifacts/personality-<backbone name>)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--encoder-lr", type=float, default=d.encoder_lr)
    p.add_argument("--head-lr", type=float, default=d.head_lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help="AdamW decoupled weight decay on encoder weight matrices")
    p.add_argument("--warmup", type=float, default=d.warmup,
                   help="linear warmup, as a fraction of all optimizer steps")
    p.add_argument("--max-tokens", type=int, default=d.max_tokens,
                   help="truncate transcripts to this many tokens (the count is logged)")
    p.add_argument("--pooling", choices=POOLINGS, default=d.pooling,
                   help="how P is pooled from the last layer; PSA-MF reads P pooled the same way")
    p.add_argument("--activation", choices=("sigmoid", "none"), default=d.activation,
                   help="output of the trait head")
    p.add_argument("--loss", choices=("mse", "l1"), default=d.loss)
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="0 disables clipping")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N clips of each split (quick runs)")
    p.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=d.baselines,
                   help="also score the frozen encoder + ridge baseline")
    p.add_argument("--device", default="auto", help=DEVICES_HELP)
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue an unfinished run found in <out>.partial/ (same options)")
    p.add_argument("--stop-after-epochs", type=int, default=None,
                   help="end this call after N completed epochs, keeping <out>.partial/ to "
                        "resume (for time-sliced jobs)")
    p.add_argument("--finish-early", action="store_true",
                   help="train no further: write the output from the best epoch completed so far "
                        "in <out>.partial/ (give the same options as the interrupted run)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from psamf.cli import INTERRUPTED
    from psamf.personality.config import PretrainConfig
    from psamf.personality.pretrain import pretrain_personality
    from psamf.training.runs import quiet_transformers

    quiet_transformers(getattr(args, "verbose", False))
    config = PretrainConfig(
        backbone=args.backbone, epochs=args.epochs, batch_size=args.batch_size,
        encoder_lr=args.encoder_lr, head_lr=args.head_lr, weight_decay=args.weight_decay,
        warmup=args.warmup, max_tokens=args.max_tokens, pooling=args.pooling,
        activation=args.activation, loss=args.loss, grad_clip=args.grad_clip, seed=args.seed,
        limit=args.limit, baselines=args.baselines,
    )
    out = args.out if args.out is not None else default_out(args.backbone)
    command = "psamf " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    try:
        metrics = pretrain_personality(
            config, args.data, out, device=args.device, resume=args.resume,
            stop_after_epochs=args.stop_after_epochs, finish_early=args.finish_early,
            command=command,
        )
    except KeyboardInterrupt:
        # Every finished epoch is checkpointed in <out>.partial/ (atomically).
        print(f"psamf pretrain-personality: interrupted; rerun the same command to continue "
              f"from the last finished epoch in {out}.partial/", file=sys.stderr)
        return INTERRUPTED
    if metrics is None:
        print(f"stopped early; rerun the same command to resume from {out}.partial/")
        return 0
    test = metrics["test"]
    print(f"wrote {out}")
    for key, label in (("constant", "constant"), ("frozen_ridge", "frozen+ridge"),
                       ("fine_tuned", "fine-tuned")):
        if key in test:
            print(f"test {label:<13} acc_mean {test[key]['acc_mean']:.4f}  "
                  f"r2_mean {test[key]['r2_mean']:.4f}")
    return 0
