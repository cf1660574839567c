"""One validation and repair pass that every sentiment reader's output goes through.

Refused (``ValueError`` naming file, split, field and index): fields of different lengths, features
that are not 3-D, lengths outside [0, T], non-finite labels or labels outside [-3, 3], duplicate
ids (within a split or across splits), empty transcripts, a modality whose width varies.

Repaired deterministically, in place (one ``logging.warning`` per split and field, with the
count): NaN and ±inf feature values become 0 (real MOSEI releases contain -inf in the acoustic
features); non-zero values beyond an utterance's length become 0, so padding is always zeros.

Empty transcripts are refused rather than dropped or filled: dropping would silently change the
size of a standard test fold and make results incomparable, and a filler text invents input. The
message says how many and where, so the user can fix the source file.
"""

from __future__ import annotations

import logging

import numpy as np

from psamf.data._util import few
from psamf.data.dataset import (
    LABEL_MAX,
    LABEL_MIN,
    ModalityFeatures,
    MultimodalDataset,
    SplitData,
)
from psamf.errors import InputError

log = logging.getLogger(__name__)
# numpy dtype kinds that hold real numbers: bool, signed / unsigned int, float (object arrays of
# dicts, strings, complex numbers and dates are refused by name).
_REAL_KINDS = "biuf"

_LABEL_TOLERANCE = 1e-5  # float32 round-off on labels stored as e.g. 3.0000002


def _where(source: str, split: str, field: str) -> str:
    return f"{source}: split '{split}', field '{field}'"


def _real(value: object, where: str, what: str) -> np.ndarray:
    """``value`` as an array of real numbers; an object array is converted if it holds only
    numbers. Strings, dicts, complex numbers and dates are refused in one line."""
    arr = np.asarray(value)
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(f"{where}: {what} must be real numbers ({err})") from None
    if arr.dtype.kind not in _REAL_KINDS:
        raise InputError(f"{where}: {what} must be real numbers, got dtype {arr.dtype}")
    return arr


def _check_modality(
    name: str, mod: ModalityFeatures, n: int, *, source: str, split: str
) -> ModalityFeatures:
    feats = _real(mod.features, _where(source, split, name), "features")
    if feats.ndim != 3:
        raise InputError(
            f"{_where(source, split, name)}: features must be 3-D (N, T, d), got shape "
            f"{feats.shape}; per-utterance vectors need a frame axis of size 1"
        )
    if feats.shape[0] != n:
        raise InputError(
            f"{_where(source, split, name)}: {feats.shape[0]} rows but the split has {n} "
            "utterances (ids / labels); the fields must describe the same utterances"
        )
    lengths = _real(mod.lengths, _where(source, split, name + "_lengths"), "lengths")
    if lengths.shape != (n,):
        raise InputError(
            f"{_where(source, split, name + '_lengths')}: shape {lengths.shape}, expected ({n},)"
        )
    if lengths.size and not np.all(np.isfinite(lengths.astype(np.float64))):
        raise InputError(f"{_where(source, split, name + '_lengths')}: non-finite lengths")
    if lengths.size and np.any(lengths != np.round(lengths)):
        idx = int(np.flatnonzero(lengths != np.round(lengths))[0])
        raise InputError(
            f"{_where(source, split, name + '_lengths')}, index {idx}: length {lengths[idx]} "
            "is not a whole number of frames"
        )
    lengths = lengths.astype(np.int64)
    t = feats.shape[1]
    bad = np.flatnonzero((lengths < 0) | (lengths > t))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{_where(source, split, name + '_lengths')}, index {i}: length {lengths[i]} outside "
            f"[0, {t}] (T = {t} frames; {bad.size} bad in all)"
        )
    # Repairs happen in place on the float32 array (no copy when the reader's array is already
    # float32): feature pickles can be gigabytes, and the readers own what they pass in.
    feats = np.asarray(feats, dtype=np.float32)
    if not feats.flags.writeable:
        feats = feats.copy()
    nonfinite = ~np.isfinite(feats)
    n_bad = int(np.count_nonzero(nonfinite))
    if n_bad:
        log.warning(
            "%s: replaced %d non-finite feature values (NaN/±inf) by 0",
            _where(source, split, name), n_bad,
        )
        feats[nonfinite] = 0.0
    del nonfinite
    stray = 0
    for i in np.flatnonzero(lengths < t):  # one utterance at a time: no (N, T, d) mask
        tail = feats[i, lengths[i]:]
        count = int(np.count_nonzero(tail))
        if count:
            stray += count
            tail[...] = 0.0
    if stray:
        log.warning(
            "%s: zeroed %d non-zero values in padding frames beyond the stated lengths",
            _where(source, split, name), stray,
        )
    return ModalityFeatures(feats, lengths)


def validate_split(split: SplitData, *, source: str, split_name: str) -> SplitData:
    """Checked and repaired copy of one split (see the module docstring for the rules)."""
    n = len(split.ids)
    sizes = {"texts": len(split.texts), "labels": int(np.size(split.labels))}
    for field, size in sizes.items():
        if size != n:
            raise InputError(
                f"{_where(source, split_name, field)}: {size} entries but {n} ids; the "
                "fields must describe the same utterances"
            )
    ids = [str(i) for i in split.ids]
    first_seen: dict[str, int] = {}
    for i, x in enumerate(ids):
        if x in first_seen:
            raise InputError(
                f"{_where(source, split_name, 'id')}, index {i}: duplicate id '{x}' (first at "
                f"index {first_seen[x]})"
            )
        first_seen[x] = i

    if np.asarray(split.labels).dtype.kind in "cmM":  # complex, timedelta, datetime
        raise InputError(f"{_where(source, split_name, 'labels')}: labels must be real numbers, "
                         f"got dtype {np.asarray(split.labels).dtype}")
    try:  # (N, 1) and (N, 1, 1) label arrays are common in pickles
        labels = np.asarray(split.labels, dtype=np.float64).reshape(n)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{_where(source, split_name, 'labels')}: not a vector of {n} numbers ({err})"
        ) from None
    bad = np.flatnonzero(~np.isfinite(labels))
    if bad.size:
        raise InputError(
            f"{_where(source, split_name, 'labels')}, index {int(bad[0])} (id {ids[bad[0]]}): "
            f"label {labels[bad[0]]} is not finite ({bad.size} in all); fix the label file"
        )
    bad = np.flatnonzero(
        (labels < LABEL_MIN - _LABEL_TOLERANCE) | (labels > LABEL_MAX + _LABEL_TOLERANCE)
    )
    if bad.size:
        raise InputError(
            f"{_where(source, split_name, 'labels')}, index {int(bad[0])} (id {ids[bad[0]]}): "
            f"label {labels[bad[0]]} outside [{LABEL_MIN:g}, {LABEL_MAX:g}] ({bad.size} in all); "
            "sentiment labels must be on the [-3, 3] scale"
        )
    labels = np.clip(labels, LABEL_MIN, LABEL_MAX).astype(np.float32)

    texts = ["" if t is None else str(t) for t in split.texts]
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise InputError(
            f"{_where(source, split_name, 'text')}, index {empty[0]}: {len(empty)} empty "
            f"transcript(s) (ids {few(ids[i] for i in empty)}); psamf refuses rather than drop "
            "utterances from a standard fold: fill in or remove them in the source file"
        )

    modalities = {
        name: _check_modality(name, mod, n, source=source, split=split_name)
        for name, mod in split.modalities.items()
    }
    return SplitData(ids=ids, texts=texts, labels=labels, modalities=modalities)


def _refuse_shared_ids(splits: dict[str, SplitData], source: str) -> None:
    """An utterance in two splits leaks labels from training into evaluation."""
    names = list(splits)
    for a_pos, a in enumerate(names):
        a_ids = set(splits[a].ids)
        for b in names[a_pos + 1 :]:
            shared = [i for i in splits[b].ids if i in a_ids]
            if shared:
                index = splits[b].ids.index(shared[0])
                raise InputError(
                    f"{_where(source, b, 'id')}, index {index}: {len(shared)} id(s) also in "
                    f"split '{a}' ({few(shared, 3)}); an utterance may sit in one split only"
                )


def validate_dataset(dataset: MultimodalDataset) -> MultimodalDataset:
    """Validate every split; also checks that a modality has one width across splits."""
    source = dataset.source or dataset.name
    splits = {
        name: validate_split(split, source=source, split_name=name)
        for name, split in dataset.splits.items()
    }
    widths: dict[str, tuple[str, int]] = {}
    for split_name, split in splits.items():
        for mod_name, mod in split.modalities.items():
            first = widths.setdefault(mod_name, (split_name, mod.width))
            if first[1] != mod.width:
                raise InputError(
                    f"{_where(source, split_name, mod_name)}: width {mod.width} but split "
                    f"'{first[0]}' has width {first[1]}; every split needs the same features"
                )
    _refuse_shared_ids(splits, source)
    return MultimodalDataset(
        name=dataset.name, splits=splits, source=dataset.source, synthetic=dataset.synthetic
    )
