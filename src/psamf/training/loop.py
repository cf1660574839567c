"""The parts every psamf training recipe shares (sentiment training, personality pretraining).

- ``set_seed``: the one way a recipe seeds Python, numpy and torch before building its model.
- ``epoch_order`` (from ``batching``): the shuffle of an epoch, a pure function of (seed, epoch),
  so a resumed run repeats it without any saved RNG.
- ``LoopState``: where a loop stands (epoch, step, best validation metric, patience); saved as
  ``state.json["loop"]`` in the training checkpoint and read back on resume.
- ``check_loss``: the one divergence check, raising ``TrainingDivergedError`` with one line.
- The work folder layout: ``checkpoint/`` (the training checkpoint, replaced atomically) and
  ``best/model.safetensors`` + ``best/state.json`` (the weights chosen on validation), written
  after the checkpoint that holds them; ``restore_best`` repairs ``best/`` on resume when a run
  died between the two writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from psamf.checkpointing import MODEL_FILE, save_model
from psamf.errors import InputError, TrainingDivergedError
from psamf.io import write_json
from psamf.training.batching import epoch_order

__all__ = [
    "BEST_DIR", "CHECKPOINT_DIR", "LoopState", "best_weights_file", "check_loss", "epoch_order",
    "restore_best", "save_best", "set_seed",
]

CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"
BEST_STATE = "state.json"


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class LoopState:
    """Where a training loop stands; everything a resume needs besides tensors and RNG states.

    Fields:
        epoch: epochs completed.
        step_in_epoch: optimizer steps done in the current (unfinished) epoch.
        global_step: optimizer steps done in all.
        best_metric: the best validation metric so far (None before the first epoch ends).
        best_epoch: the 1-based epoch that gave it (-1 before the first epoch ends).
        bad_epochs: epochs since the last improvement (early stopping).
        stopped_early: whether early stopping ended the loop.
        sums / count: running sums of loss terms over the current epoch's steps, and their count.
        history: one record per completed epoch.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped_early: bool = False
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def improves(self, metric: float, *, higher_is_better: bool) -> bool:
        """Whether ``metric`` beats the best so far (the first epoch always does)."""
        if self.best_metric is None:
            return True
        return metric > self.best_metric if higher_is_better else metric < self.best_metric

    def end_epoch(self, metric: float, *, higher_is_better: bool) -> bool:
        """Record the validation ``metric`` of epoch ``self.epoch + 1``; return whether it is the
        new best. The caller appends the history record, then calls ``next_epoch``."""
        improved = self.improves(metric, higher_is_better=higher_is_better)
        if improved:
            self.best_metric, self.best_epoch, self.bad_epochs = metric, self.epoch + 1, 0
        else:
            self.bad_epochs += 1
        return improved

    def next_epoch(self) -> None:
        self.epoch += 1
        self.step_in_epoch, self.sums, self.count = 0, {}, 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        """Read ``to_dict`` output, and the loop dicts psamf wrote before this class (the
        trainer's ``best_mae``, pretraining's ``epochs_done`` / ``best_score``)."""
        data = dict(data)
        if "best_mae" in data:
            best = data.pop("best_mae")
            data["best_metric"] = None if best is None or math.isinf(best) else best
        if "epochs_done" in data:
            data["epoch"] = data.pop("epochs_done")
            data["best_metric"] = data.pop("best_score", None)
            if data.get("best_epoch") is None:
                data["best_epoch"] = -1
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(f"training checkpoint: unknown loop state field(s) {unknown}; was it "
                             "written by a newer psamf? Upgrade psamf or start the run again")
        return cls(**data)


def check_loss(loss: torch.Tensor | None, *, epoch: int, step: int, fix: str,
               terms: dict[str, float] | None = None) -> None:
    """Raise ``TrainingDivergedError`` when the loss is missing, NaN or inf (epoch and step are
    0-based; the message counts from 1). ``fix`` names the settings to change."""
    if loss is not None and torch.isfinite(loss):
        return
    value = float(loss.detach()) if loss is not None else None
    detail = f" (terms {terms})" if terms else ""
    raise TrainingDivergedError(
        f"training loss became {value} at epoch {epoch + 1}, step {step + 1}{detail}; {fix}"
    )


def best_weights_file(folder: str | Path) -> Path:
    """``<folder>/best/model.safetensors``: where a recipe keeps its chosen weights."""
    return Path(folder) / BEST_DIR / MODEL_FILE


def save_best(folder: str | Path, model: torch.nn.Module, *, epoch: int, **info: Any) -> None:
    """Write ``best/`` for ``epoch`` (1-based): the weights, then ``state.json`` naming the epoch
    (its presence with that epoch is what ``restore_best`` checks)."""
    save_model(best_weights_file(folder), model)
    write_json(Path(folder) / BEST_DIR / BEST_STATE, {"epoch": epoch, **info})


def restore_best(folder: str | Path, model: torch.nn.Module, loop: LoopState, **info: Any) -> bool:
    """On resume: a run stopped after an improving epoch's checkpoint but before ``best/`` was
    written holds that epoch's weights only in the checkpoint just loaded into ``model``; write
    them to ``best/``. Return whether it did."""
    if loop.best_epoch != loop.epoch or loop.step_in_epoch:
        return False
    state = Path(folder) / BEST_DIR / BEST_STATE
    written = json.loads(state.read_text(encoding="utf-8")).get("epoch") \
        if state.is_file() else None
    if written == loop.best_epoch:
        return False
    save_best(folder, model, epoch=loop.best_epoch, **info)
    return True
