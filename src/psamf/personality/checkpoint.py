"""Resumable training state: model, optimizer, scheduler and RNG, written as one atomic folder.

Tensors go to safetensors, everything else to JSON; nothing is pickled (the optimizer and RNG
parts come from ``psamf.checkpointing``, shared with ``psamf.training.checkpoint``). A checkpoint
folder is replaced as a whole (``psamf.io.atomic_dir``), so a crash leaves either the previous
epoch's checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from psamf.checkpointing import (
    load_tensors,
    optimizer_state,
    optimizer_tensors,
    rng_state,
    set_rng_state,
)
from psamf.io import atomic_dir, save_tensors, write_json

MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
OPTIM_TENSORS = "optimizer.safetensors"
RNG_TENSORS = "rng.safetensors"
STATE_FILE = "state.json"


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as independent CPU tensors (clones, so shared weights save cleanly)."""
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def save_checkpoint(
    folder: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    best: dict[str, torch.Tensor] | None,
) -> None:
    """Write the whole training state into ``folder`` atomically.

    ``best`` holds the best weights so far; None keeps the ``best.safetensors`` of the previous
    checkpoint (the best did not change this epoch).
    """
    optim_tensors, optim_meta = optimizer_tensors(optimizer)
    rng_tensors, rng_meta = rng_state()
    with atomic_dir(folder) as tmp:
        save_tensors(tmp / MODEL_FILE, model_tensors(model))
        if best is not None:
            save_tensors(tmp / BEST_FILE, best)
        elif (folder / BEST_FILE).is_file():
            shutil.copy2(folder / BEST_FILE, tmp / BEST_FILE)
        save_tensors(tmp / OPTIM_TENSORS, optim_tensors)
        save_tensors(tmp / RNG_TENSORS, rng_tensors)
        write_json(
            tmp / STATE_FILE,
            {
                **state,
                "optimizer": optim_meta,
                "scheduler": scheduler.state_dict(),
                "rng": rng_meta,
            },
        )


def read_state(folder: Path) -> dict[str, Any] | None:
    """The JSON part of a checkpoint, or None when ``folder`` holds none."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: corrupt checkpoint state ({err}); delete {folder.parent} to start afresh"
        ) from err


def load_checkpoint(
    folder: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore model, optimizer, scheduler and RNG from ``folder``; return (state, best weights)."""
    state = read_state(folder)
    if state is None:
        raise FileNotFoundError(f"{folder / STATE_FILE}: no checkpoint to resume from")
    device = next(model.parameters()).device
    model.load_state_dict(load_tensors(folder / MODEL_FILE))
    optimizer.load_state_dict(
        optimizer_state(load_tensors(folder / OPTIM_TENSORS), state["optimizer"], device)
    )
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(load_tensors(folder / RNG_TENSORS), state["rng"])
    best_path = folder / BEST_FILE
    best = load_tensors(best_path) if best_path.is_file() else None
    return state, best


def load_best(folder: Path) -> dict[str, torch.Tensor]:
    """The best weights kept in a checkpoint folder (selected on validation)."""
    path = folder / BEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; the run has no completed epoch to keep")
    return load_tensors(path)
