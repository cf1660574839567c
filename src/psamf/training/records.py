"""What ``Trainer.fit`` returns: one typed record per epoch and one per seed.

``SeedResult.to_dict()`` is the seed's ``metrics.json`` (benchmarks and reports read its keys:
``seed, best_epoch, epochs_run, stopped_early, history, valid, test, personality``, and for
datasets joined by ``+`` also ``test_by_dataset``); the test predictions travel next to it, typed,
and go to ``predictions_test.csv`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(kw_only=True)
class EpochRecord:
    """One finished epoch: mean training loss terms, validation metrics, learning rates by group
    name, wall seconds (``train`` steps; ``valid``), and the step a resumed epoch restarted at
    (its training time is then partial)."""

    epoch: int
    train: dict[str, float]
    valid: dict[str, float]
    lr: dict[str, float]
    seconds: dict[str, float]
    resumed_at_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"epoch": self.epoch, "train": self.train, "valid": self.valid, "lr": self.lr,
               "seconds": self.seconds}
        if self.resumed_at_step:
            out["resumed_at_step"] = self.resumed_at_step
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        return cls(**data)


@dataclass(kw_only=True)
class SeedResult:
    """One trained seed: its best-on-validation epoch, how long it ran, its history, and the valid
    and test metrics and predictions of the best weights. ``personality`` says which P produced
    the numbers (set by the run, which knows the encoder; None without P). ``test_by_dataset``:
    for datasets joined by ``+``, the test metrics of each one's share of the test split
    ({name: {"utterances": size, metric: value}}; set by the run, which knows the sources)."""

    seed: int
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[EpochRecord]
    valid: dict[str, float]
    test: dict[str, float]
    predictions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    personality: dict[str, Any] | None = None
    test_by_dataset: dict[str, dict[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` record (no predictions)."""
        out = {"seed": self.seed, "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
               "stopped_early": self.stopped_early,
               "history": [h.to_dict() for h in self.history],
               "valid": self.valid, "test": self.test, "personality": self.personality}
        if self.test_by_dataset is not None:
            out["test_by_dataset"] = self.test_by_dataset
        return out
