"""Checkpoints: safetensors for every tensor, JSON for every scalar, written atomically.

A *model* checkpoint is ``model.safetensors`` (the state dict). A *training* checkpoint is a folder
``checkpoint/`` with ``model.safetensors``, ``optimizer.safetensors`` (Adam's per-parameter state
flattened to ``state.<param index>.<name>``), ``rng.safetensors`` (torch CPU / CUDA generator
states) and ``state.json`` (optimizer hyper-parameters, scheduler, early stopping, loop position,
Python and numpy RNG states). Nothing is pickled, so a checkpoint can be loaded without trusting it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from psamf.io import atomic_dir, save_tensors, write_json

MODEL_FILE = "model.safetensors"
_FORMAT = 1


def save_model(
    path: str | Path, model: torch.nn.Module, metadata: dict[str, str] | None = None
) -> None:
    save_tensors(path, dict(model.state_dict()), metadata=metadata)


def load_model_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model``; missing or unexpected tensors are an error naming them."""
    tensors = _load(path)
    result = model.load_state_dict(tensors, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{path}: does not fit the model built from the run's config (missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}); was the config "
            "edited after training?"
        )


def _load(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path}: unreadable safetensors file ({err})") from err


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The RNG states of torch (tensors) and of Python / numpy (JSON-able)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = st
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    scalars = {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [py_version, list(py_state), py_gauss],
    }
    return tensors, scalars


def set_rng_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, gauss = scalars["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, state, gauss_py = scalars["python"]
    random.setstate((version, tuple(state), gauss_py))


def save_training_checkpoint(
    folder: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    loop_state: dict[str, Any],
) -> None:
    """Write the whole training state into ``folder``, replacing it atomically."""
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    rng_tensors, rng_scalars = rng_state()
    with atomic_dir(folder) as tmp:
        save_model(tmp / MODEL_FILE, model)
        save_tensors(tmp / "optimizer.safetensors", opt_tensors)
        save_tensors(tmp / "rng.safetensors", rng_tensors)
        write_json(
            tmp / "state.json",
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
    state_path = folder / "state.json"
    if not state_path.is_file():
        raise FileNotFoundError(f"{state_path}: training checkpoint incomplete or missing")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{state_path}: not valid JSON ({err})") from err
    if state.get("format") != _FORMAT:
        raise ValueError(f"{state_path}: unsupported checkpoint format {state.get('format')!r}")
    load_model_weights(model, folder / MODEL_FILE)
    device = next(model.parameters()).device
    opt_tensors = {k: v.to(device) if not k.endswith(".step") else v
                   for k, v in _load(folder / "optimizer.safetensors").items()}
    try:
        optimizer.load_state_dict(_optimizer_state(opt_tensors, state["optimizer"]))
    except (KeyError, ValueError) as err:
        raise ValueError(f"{folder}: optimizer state does not fit this model ({err})") from err
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(_load(folder / "rng.safetensors"), state["rng"])
    return state["loop"]
