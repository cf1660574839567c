"""The parts of a resumable checkpoint that every training loop shares, as safetensors + JSON.

Optimizer state is split into tensors (``state.<param index>.<name>``, for a safetensors file) and
JSON-able metadata (param groups and non-tensor per-parameter values); RNG state into torch
generator states (tensors) and Python / numpy states (JSON). ``psamf.training.checkpoint`` builds
its folders from these (for PSA-MF training and personality pretraining), so nothing is pickled.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from psamf.errors import InputError, NotFoundError
from psamf.io import DIGEST_KEY, tensor_digest

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
