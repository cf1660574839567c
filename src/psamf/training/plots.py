"""Figures for a finished seed: predicted vs true, 7-class confusion matrix, learning curves.

matplotlib with the Agg backend (no display needed); each figure is written atomically as PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from psamf.io import atomic_path

CLASSES_7 = list(range(-3, 4))


def pyplot():
    """matplotlib.pyplot on the Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as PNG atomically (no half-written file on failure)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def scatter(path: Path, preds: np.ndarray, labels: np.ndarray, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(labels, preds, s=8, alpha=0.5)
    ax.plot([-3, 3], [-3, 3], color="grey", lw=1, ls="--")
    ax.set(xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), xlabel="true sentiment",
           ylabel="predicted sentiment", title=title)
    save_png(fig, path)
    plt.close(fig)


def confusion(path: Path, preds: np.ndarray, labels: np.ndarray, title: str) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    plt = pyplot()
    to_class = lambda x: np.round(np.clip(x, -3, 3)).astype(int)  # noqa: E731
    matrix = confusion_matrix(to_class(labels), to_class(preds), labels=CLASSES_7)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ConfusionMatrixDisplay(matrix, display_labels=CLASSES_7).plot(ax=ax, colorbar=False)
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    save_png(fig, path)
    plt.close(fig)


def curves(path: Path, history: list[dict[str, Any]], title: str) -> None:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(epochs, [h["train"].get("task", h["train"].get("loss")) for h in history],
            marker="o", label="train L1 (task)")
    ax.plot(epochs, [h["valid"]["mae"] for h in history], marker="o", label="valid MAE")
    ax.set(xlabel="epoch", ylabel="MAE", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    save_png(fig, path)
    plt.close(fig)


def write_plots(
    folder: str | Path, *, preds: np.ndarray, labels: np.ndarray, history: list[dict[str, Any]],
    name: str,
) -> list[Path]:
    folder = Path(folder)
    paths = [folder / "test_scatter.png", folder / "test_confusion7.png",
             folder / "learning_curves.png"]
    scatter(paths[0], preds, labels, f"{name}: test predictions")
    confusion(paths[1], preds, labels, f"{name}: test, 7 classes")
    curves(paths[2], history, f"{name}: learning curves")
    return paths
