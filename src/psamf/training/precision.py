"""Mixed precision and compilation for the trainer: ``housekeeping.precision`` and ``.compile``.

- ``fp32`` (the default): no autocast, as before.
- ``bf16``: ``torch.autocast`` with bfloat16 around forward + loss, on CUDA (compute capability
  >= 8.0, Ampere or newer) or on the CPU. Weights, gradients and Adam's state stay fp32.
- ``fp16``: autocast with float16 on CUDA only, with ``torch.amp.GradScaler`` scaling the loss so
  small gradients do not underflow; the scaler's state is part of the training checkpoint, so a
  resumed run continues with the same scale. Refused on the CPU (slow and without a scaler's
  benefit there: use bf16).

Predictions are cast to fp32 before any metric (``predict_split``), whatever the precision.

``compile=true`` compiles the model's forward with ``torch.compile`` in place
(``nn.Module.compile``), so the module, its parameters and its state-dict keys stay the same:
checkpoints and exports never see the ``_orig_mod.`` prefix that wrapping would add. On the CPU
the inductor backend needs a C++ compiler; without one the run is refused before it starts.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import torch

from psamf.errors import InputError

# The precisions that autocast (config.PRECISIONS lists all, fp32 included).
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse, in one line, a precision the resolved ``device`` cannot run."""
    if precision == "fp16" and device.type != "cuda":
        raise InputError(f"housekeeping.precision=fp16 needs a CUDA device (this run is on "
                         f"{device.type}); use housekeeping.precision=bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and \
            torch.cuda.get_device_capability(device) < (8, 0):
        raise InputError(f"housekeeping.precision=bf16: {torch.cuda.get_device_name(device)} "
                         "has no bfloat16 support (needs compute capability 8.0+); use "
                         "housekeeping.precision=fp16 or fp32")


def check_compile(enabled: bool, device: torch.device) -> None:
    """Refuse ``compile=true`` where torch.compile cannot work, before any training starts."""
    if not enabled:
        return
    if device.type == "cpu" and not (shutil.which("c++") or shutil.which("g++")
                                     or shutil.which("clang++")):
        raise InputError("housekeeping.compile=true on the CPU needs a C++ compiler for "
                         "torch.compile's inductor backend (apt-get install g++); or set "
                         "housekeeping.compile=false")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Autocast for ``precision`` on ``device`` (nothing for fp32); wrap forward + loss only."""
    dtype = _DTYPES.get(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A GradScaler, enabled for fp16 only; disabled it passes the loss and step through, so the
    training step has one code path for every precision."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def compile_model(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """``model`` with its forward compiled in place when ``enabled`` (same object, same keys)."""
    if enabled:
        model.compile()
    return model
