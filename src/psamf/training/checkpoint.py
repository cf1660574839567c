"""Checkpoints: safetensors for every tensor, JSON for every scalar, written atomically.

A *model* checkpoint is ``model.safetensors`` (the state dict). A *training* checkpoint is a folder
``checkpoint/`` with ``model.safetensors``, ``optimizer.safetensors`` (Adam's per-parameter state
flattened to ``state.<param index>.<name>``), ``rng.safetensors`` (torch CPU / CUDA generator
states) and ``state.json`` (optimizer hyper-parameters, scheduler, early stopping, loop position,
Python and numpy RNG states), plus any extra tensor files a loop keeps there (personality
pretraining keeps its best weights as ``best.safetensors``). Nothing is pickled, so a checkpoint can
be loaded without trusting it. Every tensor file carries a SHA-256 of its tensors, checked on
load (``psamf.io``), and model weights are refused when they hold NaN/inf: psamf never saves such
weights, so on load they mean a damaged file, not a training problem.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from psamf.checkpointing import (
    load_tensors,
    optimizer_state,
    optimizer_tensors,
    rng_state,
    set_rng_state,
)
from psamf.errors import InputError, NotFoundError, TrainingDivergedError
from psamf.io import atomic_dir, recover_dir, save_tensors, write_json

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.json"
_FORMAT = 1


def save_model(
    path: str | Path, model: torch.nn.Module, metadata: dict[str, str] | None = None
) -> None:
    """Write the model's weights; refuse NaN/inf ones (they would only poison a later load)."""
    tensors = dict(model.state_dict())
    bad = _non_finite(tensors)
    if bad is not None:
        raise TrainingDivergedError(
            f"the model's weights became NaN/inf (tensor '{bad}'); not saving them to {path}. "
            "Lower optim.encoder_lr / optim.other_lr or keep optim.grad_clip > 0"
        )
    save_tensors(path, tensors, metadata=metadata)


def _non_finite(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the first floating tensor holding NaN/inf, or None."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None


def load_model_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model``; missing or unexpected tensors are an error naming them, and
    so are NaN/inf weights (a damaged file: ``save_model`` never writes them)."""
    tensors = load_tensors(path)
    bad = _non_finite(tensors)
    if bad is not None:
        raise InputError(
            f"{path}: damaged file: tensor '{bad}' holds NaN/inf values, which psamf never "
            "saves; restore the file from a backup or retrain"
        )
    result = model.load_state_dict(tensors, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise InputError(
            f"{path}: does not fit the model built from the run's config (missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}); was the config "
            "edited after training?"
        )


def save_training_checkpoint(
    folder: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    loop_state: dict[str, Any],
    extra_tensors: Mapping[str, dict[str, torch.Tensor] | None] | None = None,
) -> None:
    """Write the whole training state into ``folder``, replacing it atomically.

    ``extra_tensors`` names more safetensors files to keep in the folder (a loop's best weights,
    say); a None value carries that file over unchanged from the checkpoint being replaced.
    """
    folder = Path(folder)
    opt_tensors, opt_meta = optimizer_tensors(optimizer)
    rng_tensors, rng_scalars = rng_state()
    with atomic_dir(folder) as tmp:
        save_model(tmp / MODEL_FILE, model)
        for name, tensors in (extra_tensors or {}).items():
            if tensors is not None:
                save_tensors(tmp / name, tensors)
            elif (folder / name).is_file():
                shutil.copy2(folder / name, tmp / name)
        save_tensors(tmp / "optimizer.safetensors", opt_tensors)
        save_tensors(tmp / "rng.safetensors", rng_tensors)
        write_json(
            tmp / STATE_FILE,
            {
                "format": _FORMAT,
                "loop": loop_state,
                "optimizer": opt_meta,
                "scheduler": scheduler.state_dict(),
                "rng": rng_scalars,
            },
        )


def load_training_checkpoint(
    folder: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNGs from ``folder``; return the loop state."""
    folder = Path(folder)
    state_path = folder / STATE_FILE
    if not state_path.is_file():
        raise NotFoundError(f"{state_path}: training checkpoint incomplete or missing")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{state_path}: not valid JSON ({err})") from err
    if state.get("format") != _FORMAT:
        raise InputError(f"{state_path}: unsupported checkpoint format {state.get('format')!r}")
    load_model_weights(model, folder / MODEL_FILE)
    device = next(model.parameters()).device
    opt_tensors = load_tensors(folder / "optimizer.safetensors")
    try:
        optimizer.load_state_dict(optimizer_state(opt_tensors, state["optimizer"], device))
    except (KeyError, ValueError) as err:
        raise InputError(f"{folder}: optimizer state does not fit this model ({err})") from err
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(load_tensors(folder / "rng.safetensors"), state["rng"])
    return state["loop"]


def has_training_checkpoint(folder: str | Path) -> bool:
    """Whether ``folder`` holds a training checkpoint to resume from (after recovering one that a
    crash left half-replaced)."""
    recover_dir(folder)
    return (Path(folder) / STATE_FILE).is_file()
