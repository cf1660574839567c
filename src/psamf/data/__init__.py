"""Datasets for psamf: readers for the research formats, a synthetic sample, one entry point.

``load_dataset(name_or_dir, root=None, **explicit_paths)`` is what the trainer and the CLI call:

- ``"mosi"``, ``"mosei"``, ``"first_impressions"``: the folder of that name under ``root``
  (default ``$PSAMF_DATA_ROOT``, else ``../shared/data`` from the working directory);
- ``"sample"``: the built-in synthetic MOSI-shaped dataset (nothing read from disk);
- a folder path: its files are sniffed (MMSA pickle, label.csv, First Impressions pickles);
- explicit paths for layouts a folder cannot disambiguate: ``features=`` (an MMSA or authors'
  pickle) and/or ``labels=`` (a label.csv);
- ``labels_encoding=`` (default utf-8): the text encoding of any label.csv read;
- several of the above joined by ``+`` (``"mosi+mosei"``, ``"DIR1+DIR2"``): one dataset, split by
  split, ids prefixed with each part's name, only the modalities every part has
  (``psamf.data.combine``). A path that exists as given is read as one folder even with a ``+``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from psamf.data.combine import combine, is_combination, part_indices, part_name, split_names
from psamf.data.dataset import (
    BIG_FIVE,
    LABEL_MAX,
    LABEL_MIN,
    MODALITIES,
    SPLITS,
    ModalityFeatures,
    MultimodalDataset,
    PersonalityDataset,
    PersonalitySplit,
    SplitData,
)
from psamf.data.first_impressions import read_first_impressions
from psamf.data.readers import (
    read_authors_layout,
    read_features,
    read_folder,
    read_label_csv,
    read_mmsa_pickle,
)
from psamf.data.safe_pickle import UnsafePickleError, safe_load
from psamf.data.sample import make_sample_dataset
from psamf.data.validate import validate_dataset, validate_split
from psamf.errors import InputError, NotFoundError

NAMED_DATASETS: tuple[str, ...] = ("mosi", "mosei", "first_impressions", "sample")
DATA_ROOT_ENV = "PSAMF_DATA_ROOT"

__all__ = [
    "BIG_FIVE",
    "DATA_ROOT_ENV",
    "LABEL_MAX",
    "LABEL_MIN",
    "MODALITIES",
    "NAMED_DATASETS",
    "SPLITS",
    "ModalityFeatures",
    "MultimodalDataset",
    "PersonalityDataset",
    "PersonalitySplit",
    "SplitData",
    "UnsafePickleError",
    "combine",
    "default_data_root",
    "load_dataset",
    "make_sample_dataset",
    "part_indices",
    "read_first_impressions",
    "read_folder",
    "read_label_csv",
    "read_mmsa_pickle",
    "read_authors_layout",
    "read_features",
    "safe_load",
    "validate_dataset",
    "validate_split",
]


def default_data_root() -> Path:
    """``$PSAMF_DATA_ROOT`` if set, else ``../shared/data`` relative to the working directory."""
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env) if env else Path.cwd().parent / "shared" / "data"


def load_dataset(
    name_or_dir: str | Path,
    root: str | Path | None = None,
    *,
    labels_encoding: str = "utf-8",
    **explicit_paths: Any,
) -> MultimodalDataset | PersonalityDataset:
    """Load a named dataset, a folder, or explicit files (see the module docstring).

    For ``"sample"`` the keyword arguments go to ``make_sample_dataset`` (``seed=``, sizes).
    """
    name = str(name_or_dir)
    if is_combination(name, root):
        return _load_combination(name, root, labels_encoding, explicit_paths)
    if name == "sample":
        return make_sample_dataset(**explicit_paths)
    unknown = set(explicit_paths) - {"features", "labels"}
    if unknown:
        raise InputError(
            f"unknown path argument(s) {', '.join(sorted(unknown))}; use features= (a feature "
            "pickle) and/or labels= (a label.csv)"
        )
    if name in NAMED_DATASETS:
        folder = Path(root) if root is not None else default_data_root()
        folder = folder / name
        if not folder.is_dir():
            raise NotFoundError(
                f"{folder}: folder for dataset '{name}' not found; pass root=DIR (CLI: --root) "
                f"or set ${DATA_ROOT_ENV} to the folder that contains '{name}/'"
            )
        if name == "first_impressions":
            if explicit_paths:
                raise InputError("first_impressions takes no features= / labels= paths")
            return read_first_impressions(folder)
        return read_folder(folder, name=name, labels_encoding=labels_encoding, **explicit_paths)
    folder = Path(name_or_dir)
    if root is not None and not folder.is_absolute():
        folder = Path(root) / folder
    if not folder.exists() and not explicit_paths:
        raise NotFoundError(
            f"{folder}: no such folder, and '{name}' is not a known dataset name "
            f"({', '.join(NAMED_DATASETS)})"
        )
    return read_folder(folder, labels_encoding=labels_encoding, **explicit_paths)


def _load_combination(
    spec: str, root: str | Path | None, labels_encoding: str, explicit_paths: dict[str, Any]
) -> MultimodalDataset:
    if explicit_paths:
        raise InputError(f"{spec}: features= / labels= (--features / --labels) name one "
                         "dataset's files; load several datasets by name or folder instead")
    named = []
    for name in split_names(spec):
        if name == "first_impressions":  # refused before minutes of reading it
            raise InputError(f"{spec}: 'first_impressions' is a personality corpus, not a "
                             "sentiment dataset; combine sentiment datasets only (sample, mosi, "
                             "mosei, sentiment folders)")
        dataset = load_dataset(name, root, labels_encoding=labels_encoding)
        if not isinstance(dataset, MultimodalDataset):
            raise InputError(f"{spec}: {name!r} is a personality corpus, not a sentiment "
                             "dataset; combine sentiment datasets only (sample, mosi, mosei, "
                             "sentiment folders)")
        named.append((part_name(name), dataset))
    return combine(named)
