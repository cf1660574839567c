"""Atomic file writes: a reader (or a crash) never sees half a file.

Everything psamf writes that a later step reads (checkpoints, configs, results, caches) goes through
these helpers: write to a temporary file in the same folder, flush to disk, then ``os.replace``.
A write cut short (killed, disk full, file-size limit) leaves the previous file as it was.

Every safetensors file psamf writes records a SHA-256 of its tensors (names, dtypes, shapes and
bytes) in its own metadata under ``DIGEST_KEY``: the digest is written in the same atomic step as
the data (no sidecar to fall out of step); ``psamf.checkpointing.load_tensors`` checks it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from psamf.errors import NotWritableError

DIGEST_KEY = "psamf.sha256"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_tensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """safetensors file written atomically (tensors made contiguous and moved to CPU).

    safetensors refuses tensors that share memory (tied weights, a module registered twice), so
    a tensor whose storage is already in the file is written as its own copy.
    """
    cpu: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in tensors.items():
        tensor = value.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage().data_ptr()
        cpu[key] = tensor.clone() if storage in seen else tensor
        seen.add(storage)
    metadata = {**(metadata or {}), DIGEST_KEY: tensor_digest(cpu)}
    with atomic_path(path) as tmp:
        try:
            save_file(cpu, str(tmp), metadata=metadata)
        except SafetensorError as err:  # the OS error (disk full, file too large) arrives wrapped
            raise NotWritableError(
                f"{path}: could not be written ({err}); the previous version is unchanged"
            ) from err


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks (files can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over each tensor's name, dtype, shape and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _old_dir(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def recover_dir(path: str | Path) -> None:
    """Undo half of an ``atomic_dir`` swap that a crash cut between its two renames: ``path`` is
    gone but its previous version is still beside it, so put that back. Temporary folders that a
    killed writer left beside ``path`` are removed (the caller is the folder's only writer)."""
    path = Path(path)
    if not path.exists() and _old_dir(path).is_dir():
        os.replace(_old_dir(path), path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if path.exists():
            old = _old_dir(path)  # recover_dir puts it back if we die before the next line
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
