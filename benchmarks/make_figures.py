"""Figures for ``benchmarks/RESULTS.md``, drawn from data that ``make_results.py`` prepares.

Two kinds, both PNG written atomically under ``benchmarks/figures/``:

- validation MAE by epoch, one thin line per seed, PSA-MF against its text-only baseline, with the
  selected (best) epoch marked: shows whether a budget stopped a model while it was still learning;
- paired per-seed deltas from full PSA-MF for ablations and design choices: each seed's delta as a
  dot, mean ± std as a bar, so the spread behind a mean is visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from psamf.training.plots import pyplot, save_png

FIGURES = Path(__file__).resolve().parent / "figures"
COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple")

# {model label: {seed: (valid MAE by epoch, best epoch)}}
Curves = Mapping[str, Mapping[int, tuple[Sequence[float], int]]]


def validation_curves(path: Path, panels: Sequence[tuple[str, Curves]]) -> Path:
    """One panel per comparison; a line per (model, seed); a star on each seed's best epoch."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (title, models) in zip(axes[0], panels, strict=True):
        handles = []
        for colour, (label, seeds) in zip(COLOURS, models.items(), strict=False):
            for maes, best in seeds.values():
                epochs = range(1, len(maes) + 1)
                ax.plot(epochs, maes, color=colour, lw=1, alpha=0.7, marker=".")
                ax.plot(best, maes[best - 1], color=colour, marker="*", ms=11, ls="none")
            handles.append(Line2D([], [], color=colour, label=f"{label} ({len(seeds)} seeds)"))
        ax.set(title=title, xlabel="epoch", ylabel="validation MAE")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    save_png(fig, path)
    plt.close(fig)
    return path


def paired_deltas(path: Path, metrics: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
                  ) -> Path:
    """One panel per metric: a row per variant with its per-seed deltas and mean ± std."""
    import statistics

    plt = pyplot()
    labels = list(metrics[0][1])
    counts = [len(metrics[0][1][label]) for label in labels]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics),
                                                       0.45 * len(labels) + 1.4),
                             sharey=True, squeeze=False)
    for ax, (name, rows) in zip(axes[0], metrics, strict=True):
        for y, label in enumerate(labels):
            deltas = rows.get(label, [])
            if not deltas:
                continue
            ax.plot(deltas, [y] * len(deltas), "o", color="tab:grey", ms=4, alpha=0.7)
            mean = statistics.fmean(deltas)
            std = statistics.stdev(deltas) if len(deltas) > 1 else 0.0
            ax.errorbar(mean, y, xerr=std, fmt="D", color="black", ms=5, capsize=3)
        ax.axvline(0.0, color="tab:red", lw=1, ls="--")
        ax.set(xlabel=name, yticks=range(len(labels)),
               yticklabels=[f"{label} ({n})" for label, n in zip(labels, counts, strict=True)])
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # first variant on top; the y axis is shared, so invert it once
    axes[0][0].set_ylabel("variant (paired seeds)")
    save_png(fig, path)
    plt.close(fig)
    return path
