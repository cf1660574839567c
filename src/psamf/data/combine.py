"""Several sentiment datasets as one: ``mosi+mosei`` trains on both in one run.

Splits are concatenated split by split (train with train, valid with valid, test with test). Each
id gets its source's name as a prefix (``mosi/...``, ``mosei/...``) so ids stay unique and every
utterance still says where it came from (``part_indices``), which is how a run reports test
metrics per source dataset. Only the modalities that every part has are kept: MOSI's audio plus
MOSEI's text gives a text dataset (said once in the log and in the summary).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from psamf.data.dataset import (
    PART_SEPARATOR,
    SPLITS,
    ModalityFeatures,
    MultimodalDataset,
    SplitData,
)
from psamf.errors import InputError
from psamf.media.profile import short

log = logging.getLogger(__name__)

JOIN = "+"  # between dataset names: data.name=mosi+mosei


def split_names(spec: str) -> list[str]:
    """``"mosi+mosei"`` -> ``["mosi", "mosei"]``; refuses empty or repeated names in one line."""
    names = [n.strip() for n in spec.split(JOIN)]
    if any(not n for n in names):
        raise InputError(f"data.name {spec!r}: empty dataset name around '{JOIN}'; write the "
                         f"datasets joined by '{JOIN}', e.g. mosi{JOIN}mosei")
    parts = [part_name(n) for n in names]
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if repeated:
        raise InputError(f"data.name {spec!r}: dataset {repeated[0]!r} is named twice; name each "
                         "dataset once (two folders need different folder names)")
    return names


def part_name(name_or_dir: str) -> str:
    """The prefix a part's ids get: a named dataset's name, else the folder's own name."""
    return Path(name_or_dir.rstrip("/\\")).name or name_or_dir


def is_combination(spec: str, root: str | Path | None = None) -> bool:
    """``spec`` joins several datasets, unless it is itself an existing path (a folder whose
    name holds a '+')."""
    if JOIN not in spec:
        return False
    path = Path(spec)
    return not (path.exists() or (root is not None and (Path(root) / path).exists()))


def _concat_modality(parts: list[SplitData], name: str) -> ModalityFeatures:
    """One modality over the parts' splits, zero-padded to the longest frame count."""
    present = [p.modalities[name] for p in parts if name in p.modalities]
    width = present[0].width
    frames = max(m.max_frames for m in present)
    features, lengths = [], []
    for part in parts:
        mod = part.modalities.get(name)
        block = np.zeros((len(part), frames, width), dtype=np.float32)
        if mod is None:  # this split lacks it: length 0 = absent for these utterances
            lengths.append(np.zeros(len(part), dtype=np.int64))
        else:
            block[:, : mod.max_frames] = mod.features
            lengths.append(mod.lengths.astype(np.int64))
        features.append(block)
    return ModalityFeatures(np.concatenate(features), np.concatenate(lengths))


def _concat_split(named: list[tuple[str, SplitData]], modalities: list[str]) -> SplitData:
    splits = [s for _, s in named]
    return SplitData(
        ids=[f"{name}{PART_SEPARATOR}{uid}" for name, s in named for uid in s.ids],
        texts=[t for s in splits for t in s.texts],
        labels=np.concatenate([np.asarray(s.labels) for s in splits]),
        modalities={m: _concat_modality(splits, m) for m in modalities},
    )


def combine(named: Sequence[tuple[str, MultimodalDataset]]) -> MultimodalDataset:
    """One dataset from ``[(part name, dataset), ...]`` (see the module docstring)."""
    widths = [ds.modality_widths() for _, ds in named]
    kept = [m for m in widths[0] if all(m in w for w in widths)]
    for mod in kept:
        seen = {name: w[mod] for (name, _), w in zip(named, widths, strict=True)}
        if len(set(seen.values())) > 1:
            given = ", ".join(f"{n} d={d}" for n, d in seen.items())
            raise InputError(f"{mod} features differ in width across the datasets ({given}): "
                             "they come from different extractors and cannot be trained together; "
                             "combine datasets extracted with one feature profile")
    # Equal widths are not enough: features from two extractors (or settings) must not be mixed.
    profiles = {name: ds.profile for name, ds in named}
    if kept and len({json.dumps(p, sort_keys=True) for p in profiles.values()}) > 1:
        given = ", ".join(f"{n}: {short(p)}" for n, p in profiles.items())
        raise InputError(f"the datasets' {'/'.join(kept)} features come from different feature "
                         f"profiles ({given}); combine datasets extracted with one profile, or "
                         "train on their transcripts alone (model.text_only=true)")
    dropped = sorted({m for w in widths for m in w} - set(kept))
    for mod in dropped:
        lacking = [n for (n, _), w in zip(named, widths, strict=True) if mod not in w]
        log.warning("%s: %s dropped (not in %s); training on the modalities every dataset has: "
                    "text%s", JOIN.join(n for n, _ in named), mod, ", ".join(lacking),
                    "".join(f", {m}" for m in kept))
    splits = {}
    for split in SPLITS:
        have = [(n, ds.splits[split]) for n, ds in named if split in ds.splits]
        if have and len(have) < len(named):
            lacking = [n for n, ds in named if split not in ds.splits]
            raise InputError(f"dataset {lacking[0]!r} has no {split} split but "
                             f"{have[0][0]!r} has one; combine datasets with the same splits")
        if have:
            splits[split] = _concat_split(have, kept)
    return MultimodalDataset(
        name=JOIN.join(n for n, _ in named), splits=splits,
        source=" + ".join(ds.source or n for n, ds in named),
        synthetic=any(ds.synthetic for _, ds in named),
        parts=tuple(n for n, _ in named), dropped_modalities=tuple(dropped),
        profile=next(iter(profiles.values())) if kept else None,
    )


def part_indices(ids: Sequence[str], parts: Sequence[str]) -> dict[str, np.ndarray]:
    """For a combined dataset's split: {part name: positions of its utterances}, in ``parts``
    order; parts with no utterance in this split are left out."""
    owner = [uid.split(PART_SEPARATOR, 1)[0] for uid in ids]
    out = {}
    for part in parts:
        idx = np.array([i for i, o in enumerate(owner) if o == part], dtype=np.int64)
        if idx.size:
            out[part] = idx
    return out
