"""manifest.json: the SHA-256 of every file of an exported model folder, checked before loading.

The safetensors files also carry their own tensor digest (``psamf.io``); the manifest covers the
rest (configs, tokenizers, ONNX graphs, the card), so a flipped byte anywhere is one line naming the
file, and a file added or removed after export is noticed too.
"""

from __future__ import annotations

from pathlib import Path

from psamf import __version__
from psamf.errors import InputError, NotFoundError
from psamf.io import sha256_file, write_json

MANIFEST = "manifest.json"
FORMAT = 1




def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path) -> None:
    """Record every file under ``folder`` (written last, once everything else is in place)."""
    files = {name: sha256_file(folder / name) for name in _files(folder)}
    write_json(folder / MANIFEST, {"format": FORMAT, "psamf_version": __version__,
                                   "files": files})


def verify_manifest(folder: Path) -> dict[str, str]:
    """Check every file against ``manifest.json``; return the recorded digests."""
    import json

    path = folder / MANIFEST
    if not path.is_file():
        raise NotFoundError(f"{path}: missing, so {folder} is not a folder written by psamf "
                            "export (or it is incomplete); export the run again")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        files = record["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not an object")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a valid manifest ({err}); export the run again") from None
    if record.get("format") != FORMAT:
        raise InputError(f"{path}: manifest format {record.get('format')!r} is not one this psamf "
                         f"({__version__}) reads ({FORMAT}); use a matching psamf")
    for name, want in sorted(files.items()):
        file = folder / name
        if not file.is_file():
            raise NotFoundError(f"{file}: listed in {MANIFEST} but missing; copy the whole "
                                "folder again or re-export")
        if sha256_file(file) != want:
            raise InputError(f"{file}: damaged file: its SHA-256 does not match {MANIFEST} "
                             "(a flipped bit or a partial copy); copy it again or re-export")
    extra = sorted(set(_files(folder)) - set(files))
    if extra:
        raise InputError(f"{folder / extra[0]}: not listed in {MANIFEST} (added after export); "
                         "remove it or re-export")
    return files
