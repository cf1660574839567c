"""Which torch device to run on: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda[:N]``.

torch is imported on first use, so the CLI can show ``DEVICES_HELP`` without loading it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psamf.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES_HELP = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The device for ``name``; None means ``auto``. Asking for CUDA where there is none is an
    error (not a silent fall-back to CPU, which would make a run hours slower unnoticed)."""
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"device {str(name)!r}: not a device name ({DEVICES_HELP})") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(name)!r} asked for, but CUDA is not available here; "
                         "use cpu or auto")
    return device
