"""ChaLearn First Impressions V2: Big Five scores and transcripts of short vlog clips.

The challenge ships, per split, ``annotation_<split>.pkl`` (trait -> {clip: score in [0, 1]}, with
an extra ``interview`` entry we ignore) and ``transcription_<split>.pkl`` (clip -> text), both
Python 2 pickles. Clips are sorted by name so the order never depends on dict order. Empty
transcripts are kept and counted: whether to drop them is the pretraining recipe's decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from psamf.data._util import few
from psamf.data.dataset import BIG_FIVE, PersonalityDataset, PersonalitySplit
from psamf.data.safe_pickle import safe_load
from psamf.errors import InputError, NotFoundError

log = logging.getLogger(__name__)

# Our split name -> the challenge's file-name stem.
FI_SPLIT_FILES: dict[str, str] = {"train": "training", "valid": "validation", "test": "test"}


def first_impressions_files(folder: str | Path) -> dict[str, tuple[Path, Path]]:
    """Expected (annotation, transcription) paths per split; raises if any is missing."""
    folder = Path(folder)
    files = {
        split: (folder / f"annotation_{stem}.pkl", folder / f"transcription_{stem}.pkl")
        for split, stem in FI_SPLIT_FILES.items()
    }
    missing = [p.name for pair in files.values() for p in pair if not p.is_file()]
    if missing:
        raise NotFoundError(
            f"{folder}: First Impressions files missing: {', '.join(missing)} (expected "
            "annotation_{training,validation,test}.pkl and transcription_{...}.pkl from the "
            "ChaLearn First Impressions V2 release)"
        )
    return files


def _as_mapping(obj: Any, path: Path, what: str) -> Mapping[Any, Any]:
    if not isinstance(obj, Mapping):
        raise InputError(f"{path}: expected a dict of {what}, found {type(obj).__name__}")
    return obj


def _read_split(
    split: str, annotation_path: Path, transcription_path: Path, traits: tuple[str, ...]
) -> PersonalitySplit:
    annotation = _as_mapping(
        safe_load(annotation_path, encoding="latin1"), annotation_path, "trait -> {clip: score}"
    )
    transcription = _as_mapping(
        safe_load(transcription_path, encoding="latin1"), transcription_path, "clip -> transcript"
    )
    absent = [t for t in traits if t not in annotation]
    if absent:
        raise InputError(
            f"{annotation_path}: trait(s) {', '.join(absent)} missing (found "
            f"{', '.join(map(str, annotation))}); is this a First Impressions annotation file?"
        )
    ids = sorted(str(k) for k in transcription)
    id_set = set(ids)
    for trait in traits:
        scores = _as_mapping(annotation[trait], annotation_path, f"clip -> {trait} score")
        keys = {str(k) for k in scores}
        if keys - id_set:
            raise InputError(
                f"{transcription_path}: split '{split}': clips annotated in {annotation_path.name}"
                f" but without a transcript: {few(sorted(keys - id_set))}"
            )
        if id_set - keys:
            raise InputError(
                f"{annotation_path}: split '{split}', field '{trait}': no score for clips "
                f"{few(sorted(id_set - keys))}"
            )
    by_key = {trait: {str(k): v for k, v in annotation[trait].items()} for trait in traits}
    try:
        targets = np.array([[by_key[t][i] for t in traits] for i in ids], dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(f"{annotation_path}: split '{split}': a score is not a number ({err})"
                         ) from None
    targets = targets.reshape(len(ids), len(traits))
    bad = np.argwhere(~np.isfinite(targets) | (targets < 0) | (targets > 1))
    if bad.size:
        row, col = (int(x) for x in bad[0])
        raise InputError(
            f"{annotation_path}: split '{split}', field '{traits[col]}', index {row} (clip "
            f"{ids[row]}): score {float(targets[row, col])} outside [0, 1] ({len(bad)} in all)"
        )
    text_by_id = {str(k): v for k, v in transcription.items()}
    texts = ["" if text_by_id[i] is None else str(text_by_id[i]) for i in ids]
    empty = sum(1 for t in texts if not t.strip())
    if empty:
        log.info("First Impressions %s: %d of %d transcripts are empty (kept)", split, empty,
                 len(ids))
    return PersonalitySplit(ids=ids, texts=texts, targets=targets)


def read_first_impressions(
    folder: str | Path, *, traits: tuple[str, ...] = BIG_FIVE
) -> PersonalityDataset:
    """Read the six ChaLearn pickles in ``folder`` into splits train / valid / test."""
    files = first_impressions_files(folder)
    splits = {
        split: _read_split(split, ann, tra, tuple(traits)) for split, (ann, tra) in files.items()
    }
    return PersonalityDataset(
        name="first_impressions", splits=splits, traits=tuple(traits), source=str(Path(folder))
    )
