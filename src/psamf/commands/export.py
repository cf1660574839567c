"""``psamf export``: a trained run as a self-contained model folder.

Examples::

    psamf export runs/my-run --out models/my-model
    psamf export runs/my-run --out models/my-model --onnx --int8
    psamf predict models/my-model --text "what a great film" --backend onnx

The folder holds the model's weights, the text backbone's config and tokenizer, a copy of the
personality encoder (with its trait head), the versioned config, the feature profile, the test
metrics, a model card (README.md) and manifest.json (SHA-256 of every file, checked on load).
``psamf predict``, ``psamf serve`` and ``psamf.load_model`` read it with nothing else. ``--onnx``
adds ONNX graphs (sentiment model with P as an input; personality encoder) checked against PyTorch
at export; ``--int8`` adds dynamically quantised versions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from psamf.commands._args import add_command, add_encoder_override, add_run_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export", doc=__doc__,
                    help="write a trained run as a self-contained model folder (+ ONNX graphs)")
    add_run_argument(p)
    add_encoder_override(p)
    p.add_argument("--out", type=Path, required=True,
                   help="the model folder to write (replaced atomically if it exists)")
    p.add_argument("--seed", type=int, default=None, help="which seed's model (default: first)")
    p.add_argument("--onnx", action="store_true",
                   help="also write ONNX graphs (needs the serve extra: onnx, onnxruntime)")
    p.add_argument("--int8", action="store_true",
                   help="with --onnx: also int8 dynamically quantised graphs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from psamf.export import export_run
    from psamf.export.layout import EXPORT_INFO
    from psamf.training.runs import quiet_transformers

    quiet_transformers(getattr(args, "verbose", False))
    out = export_run(args.run, args.out, seed=args.seed, onnx=args.onnx, quantize=args.int8,
                     personality_encoder=args.personality_encoder)
    info = json.loads((out / EXPORT_INFO).read_text(encoding="utf-8"))
    print(json.dumps({"out": str(out), "seed": info["seed"], "onnx": info.get("onnx")}, indent=2))
    return 0
