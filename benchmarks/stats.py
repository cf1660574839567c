"""The one place for the benchmarks' statistics and number formats (RESULTS.md, the queue's log).

Values stay at full precision in the result files; they are rounded only here, for display.
Results are ``{seed: result}`` mappings whose ``result["test"]`` holds the metrics.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats

from psamf.training.reports import METRIC_NAMES

METRICS: tuple[tuple[str, str], ...] = tuple(METRIC_NAMES.items())  # (key, display name)
LOWER_IS_BETTER = {"mae"}
Runs = Mapping[int, Mapping[str, Any]]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (NaN with one value: no spread); NaN for both when a value is NaN
    (Corr of a constant prediction, say), which ``statistics.stdev`` would raise on."""
    if any(math.isnan(v) for v in values):
        return float("nan"), float("nan")
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else float("nan")


def paired_deltas(runs: Runs, base: Runs, key: str, split: str = "test") -> list[float]:
    """``split``'s ``key`` of ``runs`` minus ``base``, seed by seed, over the seeds both have."""
    return [runs[s][split][key] - base[s][split][key] for s in sorted(set(runs) & set(base))]


def paired_p(deltas: Sequence[float]) -> str:
    """Two-sided paired t-test of per-seed deltas against 0; ``–`` under 2 seeds, with no spread
    or with a NaN delta."""
    if len(deltas) < 2 or any(math.isnan(d) for d in deltas) or statistics.stdev(deltas) == 0:
        return "–"
    return f"{stats.ttest_1samp(deltas, 0.0).pvalue:.2f}"


def gain_and_spread(runs: Runs, base: Runs, key: str) -> tuple[float, float]:
    """(how far ``runs`` is ahead of ``base`` on the test mean of ``key``, the larger std), over
    the seeds both have, so that the means compare the same seeds as the paired p beside them."""
    common = sorted(set(runs) & set(base))
    m1, s1 = mean_std([runs[s]["test"][key] for s in common])
    m0, s0 = mean_std([base[s]["test"][key] for s in common])
    return (m0 - m1) if key in LOWER_IS_BETTER else (m1 - m0), max(s0, s1)


def fmt(key: str, value: float | None, *, signed: bool = False) -> str:
    """A metric for display: 3 decimals for MAE and Corr, 2 for percentages; ``–`` if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    digits = 3 if key in ("mae", "corr") else 2
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ms(key: str, values: Sequence[float], *, signed: bool = False) -> str:
    """``mean ± std`` of ``values``; the mean alone for one value (no made-up ``± 0``)."""
    if not values:
        return "–"
    mean, std = mean_std(values)
    if len(values) == 1 or math.isnan(mean):
        return fmt(key, mean, signed=signed)
    return f"{fmt(key, mean, signed=signed)} ± {fmt(key, std)}"


def seeds_text(seeds: Sequence[int]) -> str:
    return ",".join(str(s) for s in sorted(seeds)) or "–"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table, as lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
