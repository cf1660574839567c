"""Evaluation metrics as pure functions of (predictions, labels).

Sentiment metrics follow the field's standard (docs: PSA-MF.md, "Evaluation"): MAE and Pearson r
raw; 7- and 5-class accuracy after clipping and numpy's half-to-even rounding; binary accuracy and
weighted F1 in both conventions, "has0" (negative vs non-negative, every sample) and "non0"
(negative vs positive, samples whose label is not 0). Accuracies and F1 are percentages. Values that
are mathematically undefined come back as NaN with a warning instead of raising, so an evaluation
loop never dies on a degenerate batch. Rounding happens only in ``format_metrics``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import f1_score, r2_score

from psamf.errors import InputError

SENTIMENT_KEYS: tuple[str, ...] = (
    "mae",
    "corr",
    "acc7",
    "acc5",
    "acc2_has0",
    "f1_has0",
    "acc2_non0",
    "f1_non0",
)


def _as_vector(values: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {arr.shape}; flatten (N, 1) outputs first")
    if arr.size == 0:
        raise InputError(f"{name} is empty; metrics need at least one sample")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(
            f"{name} has {bad.size} non-finite value(s) (first at index {int(bad[0])}); "
            "check the model for NaN outputs or the labels for missing values"
        )
    return arr


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        warnings.warn(
            "Pearson correlation is undefined (fewer than two samples or a constant input); "
            "returning NaN for 'corr'",
            RuntimeWarning,
            stacklevel=3,
        )
        return float("nan")
    return float(np.corrcoef(p, t)[0, 1])


def _binary(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Accuracy and weighted F1 (both percent) of two boolean vectors."""
    acc = float(np.mean(truth == pred)) * 100.0
    f1 = float(f1_score(truth, pred, average="weighted", zero_division=0)) * 100.0
    return acc, f1


def regression_metrics(
    preds: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[float]
) -> dict[str, float]:
    """Standard MOSI/MOSEI metrics; keys are ``SENTIMENT_KEYS`` (accuracies and F1 in percent)."""
    p = _as_vector(preds, "preds")
    t = _as_vector(labels, "labels")
    if p.shape != t.shape:
        raise InputError(f"preds and labels differ in length: {p.size} vs {t.size}")

    out: dict[str, float] = {"mae": float(np.mean(np.abs(p - t))), "corr": _pearson(p, t)}
    for key, bound in (("acc7", 3.0), ("acc5", 2.0)):
        same = np.round(np.clip(p, -bound, bound)) == np.round(np.clip(t, -bound, bound))
        out[key] = float(np.mean(same)) * 100.0

    out["acc2_has0"], out["f1_has0"] = _binary(t >= 0, p >= 0)
    nonzero = t != 0
    if nonzero.any():
        out["acc2_non0"], out["f1_non0"] = _binary(t[nonzero] > 0, p[nonzero] > 0)
    else:
        warnings.warn(
            "every label is 0, so the negative/positive (non0) metrics are undefined; "
            "returning NaN for 'acc2_non0' and 'f1_non0'",
            RuntimeWarning,
            stacklevel=2,
        )
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    return out


def grouped_regression_metrics(
    preds: np.ndarray | Sequence[float],
    labels: np.ndarray | Sequence[float],
    groups: Mapping[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """``regression_metrics`` of each group of positions ({name: indices}, e.g. each source
    dataset of a combined test split), with the group's size as ``utterances``."""
    p, t = np.asarray(preds), np.asarray(labels)
    return {name: {"utterances": int(len(idx)), **regression_metrics(p[idx], t[idx])}
            for name, idx in groups.items()}


def personality_metrics(
    preds: np.ndarray, targets: np.ndarray, traits: Sequence[str]
) -> dict[str, float]:
    """Per-trait accuracy (1 - MAE) and R², plus their means over traits.

    R² of a trait whose targets are constant is undefined: NaN with a warning.
    """
    p = np.asarray(preds, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    traits = tuple(traits)
    if p.ndim != 2 or p.shape != y.shape:
        raise InputError(
            f"preds and targets must both be (N, n_traits); got {p.shape} and {y.shape}"
        )
    if p.shape[0] == 0:
        raise InputError("preds is empty; metrics need at least one sample")
    if p.shape[1] != len(traits):
        raise InputError(f"{p.shape[1]} prediction columns but {len(traits)} trait names")
    for name, arr in (("preds", p), ("targets", y)):
        if not np.isfinite(arr).all():
            raise InputError(f"{name} has non-finite values; check the model or the corpus")

    out: dict[str, float] = {}
    for j, trait in enumerate(traits):
        out[f"acc_{trait}"] = 1.0 - float(np.mean(np.abs(p[:, j] - y[:, j])))
        if p.shape[0] < 2 or np.ptp(y[:, j]) == 0:
            warnings.warn(
                f"R² is undefined for trait '{trait}' (constant targets); returning NaN",
                RuntimeWarning,
                stacklevel=2,
            )
            out[f"r2_{trait}"] = float("nan")
        else:
            out[f"r2_{trait}"] = float(r2_score(y[:, j], p[:, j]))
    out["acc_mean"] = float(np.mean([out[f"acc_{t}"] for t in traits]))
    out["r2_mean"] = float(np.mean([out[f"r2_{t}"] for t in traits]))
    return out


def format_metrics(metrics: Mapping[str, float], digits: int = 4) -> str:
    """``key=value`` pairs for logs and reports: the only place values are rounded."""
    return "  ".join(
        f"{k}={'nan' if np.isnan(v) else f'{v:.{digits}f}'}" for k, v in metrics.items()
    )
