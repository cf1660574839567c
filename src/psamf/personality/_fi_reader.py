"""TEMPORARY stand-in for psamf.data's First Impressions reader and metrics (to remove)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from psamf.data.dataset import BIG_FIVE, PersonalityDataset, PersonalitySplit
from psamf.data.safe_pickle import safe_load

_FILES = {"train": "training", "valid": "validation", "test": "test"}


def read_first_impressions(root: Path) -> PersonalityDataset:
    splits = {}
    for name, stem in _FILES.items():
        ann = safe_load(root / f"annotation_{stem}.pkl", encoding="latin1")
        tra = safe_load(root / f"transcription_{stem}.pkl", encoding="latin1")
        ids = sorted(tra)
        targets = np.array([[ann[t][i] for t in BIG_FIVE] for i in ids], dtype=np.float32)
        splits[name] = PersonalitySplit(ids=ids, texts=[str(tra[i]) for i in ids], targets=targets)
    return PersonalityDataset(name="first_impressions", splits=splits, source=str(root))


def personality_metrics(preds, targets, traits):
    out = {}
    for j, t in enumerate(traits):
        p, y = preds[:, j], targets[:, j]
        out[f"acc_{t}"] = 1 - float(np.abs(p - y).mean())
        out[f"r2_{t}"] = 1 - float(((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    out["acc_mean"] = float(np.mean([out[f"acc_{t}"] for t in traits]))
    out["r2_mean"] = float(np.mean([out[f"r2_{t}"] for t in traits]))
    return out
