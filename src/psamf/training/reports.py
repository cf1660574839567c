"""Results tables: per-seed metrics and their mean ± std, as markdown, CSV and JSON.

Metrics are kept at full precision in JSON/CSV and rounded only for display. With one seed there
is no spread to report: the std is null in JSON, blank in CSV, and the tables show the value alone
(``mean (n=1)``) rather than a misleading ``± 0``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from psamf.io import write_json, write_text

METRIC_NAMES: dict[str, str] = {
    "mae": "MAE",
    "corr": "Corr",
    "acc7": "Acc-7",
    "acc5": "Acc-5",
    "acc2_has0": "Acc-2 has0",
    "f1_has0": "F1 has0",
    "acc2_non0": "Acc-2 non0",
    "f1_non0": "F1 non0",
}
SYNTHETIC_BANNER = "SYNTHETIC sample data: these numbers say the code works, not how good PSA-MF is"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return float(arr.mean()), std


def summarize(per_seed: Sequence[dict[str, Any]], split: str = "test") -> dict[str, Any]:
    """``{"split", "seeds", "n", "per_seed": [{seed, metrics}], "mean": {...}, "std": {...}}``;
    each std is None when there is a single seed."""
    keys = [k for k in METRIC_NAMES if all(k in r[split] for r in per_seed)]
    out: dict[str, Any] = {
        "split": split,
        "seeds": [r["seed"] for r in per_seed],
        "n": len(per_seed),
        "per_seed": [{"seed": r["seed"], "best_epoch": r.get("best_epoch"),
                      **{k: r[split][k] for k in keys}} for r in per_seed],
        "mean": {},
        "std": {},
    }
    for key in keys:
        out["mean"][key], out["std"][key] = mean_std([r[split][key] for r in per_seed])
        if len(per_seed) == 1:
            out["std"][key] = None  # one seed: no spread, not a spread of zero
    return out


def _single(summary: dict[str, Any]) -> bool:
    return len(summary["per_seed"]) == 1


def _fmt(key: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.4f}" if key in ("mae", "corr") else f"{value:.2f}"


def markdown_table(summary: dict[str, Any], *, title: str = "") -> str:
    """Rows: each seed, then mean ± std; columns: the standard metrics (in METRIC_NAMES order,
    also for a summary read back from JSON with sorted keys)."""
    keys = [k for k in METRIC_NAMES if k in summary["mean"]]
    head = "| seed | " + " | ".join(METRIC_NAMES[k] for k in keys) + " |"
    rule = "|---|" + "---|" * len(keys)
    rows = [
        f"| {row['seed']} | " + " | ".join(_fmt(k, row[k]) for k in keys) + " |"
        for row in summary["per_seed"]
    ]
    if _single(summary):
        rows.append("| mean (n=1) | " + " | ".join(_fmt(k, summary["mean"][k]) for k in keys)
                    + " |")
    else:
        rows.append(
            f"| mean ± std (n={len(summary['per_seed'])}) | "
            + " | ".join(f"{_fmt(k, summary['mean'][k])} ± {_fmt(k, summary['std'][k])}"
                         for k in keys)
            + " |"
        )
    lines = ([f"{title}", ""] if title else []) + [head, rule, *rows]
    return "\n".join(lines) + "\n"


def csv_table(summary: dict[str, Any]) -> str:
    keys = list(summary["mean"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["seed", *keys])
    for row in summary["per_seed"]:
        writer.writerow([row["seed"], *(repr(float(row[k])) for k in keys)])
    writer.writerow(["mean", *(repr(summary["mean"][k]) for k in keys)])
    # One seed: the std cells stay empty (no spread), rather than a made-up 0.0.
    writer.writerow(["std", *("" if _single(summary) else repr(summary["std"][k]) for k in keys)])
    return buffer.getvalue()


def write_summary(
    folder: str | Path, per_seed: Sequence[dict[str, Any]], *, header: str = ""
) -> dict[str, Any]:
    """Write ``summary.{md,csv,json}`` (test split, and validation in the JSON/markdown; for
    datasets joined by ``+`` also each one's test metrics, JSON key ``test_by_dataset``)."""
    folder = Path(folder)
    test = summarize(per_seed, "test")
    valid = summarize(per_seed, "valid")
    by_dataset = summarize_by_dataset(per_seed)
    md = (f"{header}\n\n" if header else "") + markdown_table(
        test, title="Test (checkpoint chosen on validation MAE)"
    )
    for name, (size, table) in by_dataset.items():
        md += "\n" + markdown_table(table, title=f"Test, {name} alone ({size} utterances)")
    md += "\n" + markdown_table(valid, title="Validation")
    write_text(folder / "summary.md", md)
    write_text(folder / "summary.csv", csv_table(test))
    record = {"test": test, "valid": valid}
    if by_dataset:
        record["test_by_dataset"] = {name: {"utterances": size, **table}
                                     for name, (size, table) in by_dataset.items()}
    write_json(folder / "summary.json", record)
    return test


def summarize_by_dataset(
    per_seed: Sequence[dict[str, Any]],
) -> dict[str, tuple[int, dict[str, Any]]]:
    """For runs on datasets joined by ``+``: {dataset: (test size, ``summarize`` of its test
    metrics over the seeds)}; empty for a single dataset."""
    if not per_seed or any("test_by_dataset" not in r for r in per_seed):
        return {}
    out = {}
    for name, metrics in per_seed[0]["test_by_dataset"].items():
        rows = [{**r, "test": r["test_by_dataset"][name]} for r in per_seed]
        out[name] = (int(metrics["utterances"]), summarize(rows, "test"))
    return out
