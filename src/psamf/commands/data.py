"""``psamf data``: inspect datasets (``psamf data info mosi``, ``psamf data info path/to/folder``).

Loading runs every reader check, so ``data info`` is also the way to validate a folder before a
long training run: repairs are logged with counts, refusals end with a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _info(args: argparse.Namespace) -> int:
    from psamf.data import load_dataset

    paths = {k: v for k, v in (("features", args.features), ("labels", args.labels)) if v}
    dataset = load_dataset(args.dataset, root=args.root, labels_encoding=args.labels_encoding,
                           **paths)
    print(dataset.summary())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="inspect and validate datasets", description=__doc__)
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    info = sub.add_parser(
        "info",
        help="load a dataset (all checks run) and print its summary",
        description="Load a dataset and print counts per split, modalities and widths, labels.",
    )
    info.add_argument(
        "dataset",
        help="mosi, mosei, first_impressions, sample, or a folder with label.csv and/or a "
        "feature pickle",
    )
    info.add_argument("--root", type=Path, default=None,
                      help="folder holding the named datasets (default: $PSAMF_DATA_ROOT, else "
                           "../shared/data)")
    info.add_argument("--features", type=Path, default=None,
                      help="explicit feature pickle (MMSA or the PSA-MF authors' layout)")
    info.add_argument("--labels", type=Path, default=None,
                      help="explicit label.csv (text, label, mode)")
    info.add_argument("--labels-encoding", default="utf-8", metavar="ENCODING",
                      help="text encoding of the label.csv (default utf-8; e.g. latin-1, cp1252, "
                           "utf-16)")
    info.set_defaults(func=_info)
