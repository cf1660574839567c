"""Resumable training state: model, optimizer, scheduler and RNG, written as one atomic folder.

Tensors go to safetensors, everything else to JSON; nothing is pickled. A checkpoint folder is
replaced as a whole (``psamf.io.atomic_dir``), so a crash leaves either the previous epoch's
checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from psamf.io import atomic_dir, save_tensors, write_json

MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
OPTIM_TENSORS = "optimizer.safetensors"
RNG_TENSORS = "rng.safetensors"
STATE_FILE = "state.json"


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as independent CPU tensors (clones, so shared weights save cleanly)."""
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def _optimizer_split(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().to("cpu").clone()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    legacy = np.random.get_state()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [legacy[0], legacy[1].tolist(), *[float(x) for x in legacy[2:]]],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), cached))


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
    optim_tensors, optim_meta = _optimizer_split(optimizer)
    rng_tensors, rng_meta = _rng_state()
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
    model.load_state_dict(load_file(str(folder / MODEL_FILE)))
    optim = _optimizer_join(load_file(str(folder / OPTIM_TENSORS)), state["optimizer"])
    optimizer.load_state_dict(optim)
    for group_state in optimizer.state.values():
        for key, value in group_state.items():
            if torch.is_tensor(value) and key != "step":
                group_state[key] = value.to(device)
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(load_file(str(folder / RNG_TENSORS)), state["rng"])
    best_path = folder / BEST_FILE
    best = load_file(str(best_path)) if best_path.is_file() else None
    return state, best


def load_best(folder: Path) -> dict[str, torch.Tensor]:
    """The best weights kept in a checkpoint folder (selected on validation)."""
    path = folder / BEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; the run has no completed epoch to keep")
    return load_file(str(path))
