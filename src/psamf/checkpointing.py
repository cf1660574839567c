"""Checkpoints: safetensors for every tensor, JSON for every scalar, written atomically.

A *model* checkpoint is ``model.safetensors`` (the state dict). A *training* checkpoint is a folder
``checkpoint/`` with ``model.safetensors``, ``optimizer.safetensors`` (Adam's per-parameter state
flattened to ``state.<param index>.<name>``), ``rng.safetensors`` (torch CPU / CUDA generator
states) and ``state.json`` (optimizer hyper-parameters, scheduler, early stopping, loop position,
Python and numpy RNG states, the fp16 gradient scaler's state when there is one), plus any extra
tensor files a loop keeps there (personality recipes keep best weights in ``best/`` beside it).
Both training loops (PSA-MF training and personality pretraining) use this one module. Nothing is
pickled, so a checkpoint can be loaded without trusting it. Every tensor file carries a SHA-256
of its tensors, checked on load (``load_tensors``), and model weights are refused when they hold
NaN/inf: psamf never saves such weights, so on load they mean a damaged file, not a training
problem.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from psamf.errors import InputError, NotFoundError, TrainingDivergedError
from psamf.io import DIGEST_KEY, atomic_dir, recover_dir, save_tensors, tensor_digest, write_json

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
    grad_scaler: torch.amp.GradScaler | None = None,
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
                # all scalars; {} for a disabled scaler (fp32 / bf16)
                "grad_scaler": grad_scaler.state_dict() if grad_scaler is not None else {},
            },
        )


def load_training_checkpoint(
    folder: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    grad_scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler, RNGs and (when both sides have one) the gradient
    scaler from ``folder``; return the loop state. Checkpoints written before the scaler was
    saved load as if it had none: an enabled scaler then starts from its initial scale."""
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
    if grad_scaler is not None and grad_scaler.is_enabled() and state.get("grad_scaler"):
        grad_scaler.load_state_dict(state["grad_scaler"])
    set_rng_state(load_tensors(folder / "rng.safetensors"), state["rng"])
    return state["loop"]


def has_training_checkpoint(folder: str | Path) -> bool:
    """Whether ``folder`` holds a training checkpoint to resume from (after recovering one that a
    crash left half-replaced)."""
    recover_dir(folder)
    return (Path(folder) / STATE_FILE).is_file()


# --- the parts: verified tensor files, optimizer state and RNG state as tensors + JSON ---------

log = logging.getLogger(__name__)
_told_unverified = False  # files older than the digests are mentioned once per process


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, checked against the SHA-256 psamf recorded in its metadata
    when it wrote it; a missing, unreadable or altered file is a one-line error naming it."""
    global _told_unverified
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(
            f"{path}: unreadable safetensors file, damaged or cut short ({err}); restore it "
            "from a backup or retrain"
        ) from err
    recorded = metadata.get(DIGEST_KEY)
    if recorded is None:
        if not _told_unverified:
            log.warning("%s (and any other file written before psamf recorded SHA-256 digests) "
                        "is loaded unverified", path)
            _told_unverified = True
    elif tensor_digest(tensors) != recorded:
        raise InputError(
            f"{path}: damaged file: its tensors do not match the SHA-256 recorded when psamf "
            "wrote it (a flipped bit or a partial copy); restore it from a backup or retrain"
        )
    return tensors


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors keyed ``state.<param index>.<name>``, JSON-able param groups and scalars)."""
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


def optimizer_state(
    tensors: dict[str, torch.Tensor], meta: dict, device: torch.device | str | None = None
) -> dict:
    """The ``optimizer.state_dict()`` that ``optimizer_tensors`` split; tensors other than
    ``step`` are moved to ``device`` when given."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        if device is not None and name != "step":
            value = value.to(device)
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
    """Restore what ``rng_state`` returned (CUDA states only when the device count matches)."""
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, gauss = scalars["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), gauss))
    version, state, gauss_py = scalars["python"]
    random.setstate((version, tuple(state), gauss_py))
