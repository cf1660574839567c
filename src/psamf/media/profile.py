"""The feature profile: which extractors, versions and settings made a dataset's features.

Features from different extractors (or settings) are not interchangeable: a model trained on one
profile cannot read another's. ``profile.json`` is written beside the pickle by ``psamf extract``,
exposed as ``MultimodalDataset.profile`` by the loader, recorded in a run's ``run.json`` and
compared by ``psamf evaluate``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from psamf import __version__
from psamf.errors import InputError
from psamf.io import write_json

PROFILE_JSON = "profile.json"
PROFILE_FORMAT = 1


def build_profile(
    *, acoustic: dict[str, Any] | None, face: dict[str, Any] | None, asr: dict[str, Any],
    alignment: str, utterances: str,
) -> dict[str, Any]:
    """The profile of one extraction (``None`` for a modality that was not extracted)."""
    return {"format": PROFILE_FORMAT, "psamf_version": __version__, "acoustic": acoustic,
            "face": face, "asr": asr, "alignment": alignment, "utterances": utterances}


def profile_digest(profile: dict[str, Any]) -> str:
    """SHA-256 of the profile's canonical JSON (keys the per-file cache)."""
    text = json.dumps(profile, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_profile(folder: str | Path, profile: dict[str, Any]) -> Path:
    path = Path(folder) / PROFILE_JSON
    write_json(path, profile)
    return path


def read_profile(folder: str | Path) -> dict[str, Any] | None:
    """The profile.json in ``folder``, or None when there is none."""
    path = Path(folder) / PROFILE_JSON
    if not path.is_file():
        return None
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); re-run psamf extract") from None
    if not isinstance(profile, dict):
        raise InputError(f"{path}: expected a JSON object; re-run psamf extract")
    return profile


def comparable(profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """What must match between a run's and a dataset's features (the psamf version need not)."""
    if profile is None:
        return None
    return {k: v for k, v in profile.items() if k != "psamf_version"}


def short(profile: dict[str, Any] | None) -> str:
    """One-line description for error messages."""
    if profile is None:
        return "no feature profile"
    parts = []
    for key in ("acoustic", "face"):
        desc = profile.get(key)
        parts.append(f"{key}={desc.get('name')} {desc.get('version')}" if desc else f"{key}=none")
    asr = profile.get("asr") or {}
    parts.append(f"asr={asr.get('model')}")
    parts.append(f"alignment={profile.get('alignment')}")
    parts.append(f"#{profile_digest(comparable(profile) or {})[:8]}")
    return " ".join(parts)
