"""Everything about the personality embedding P: the encoder folder (``EncoderFolder``), the one
encode function, the frozen ``PersonalityEncoder`` and the on-disk ``PersonalityEmbeddingCache``;
and personality pretraining (a text encoder fine-tuned to read the Big Five, and its trait head).

Names are imported on first use so that ``psamf --help`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EncoderFolder": "folder",
    "HEAD_CONFIG": "folder",
    "HEAD_WEIGHTS": "folder",
    "POOLINGS": "pooling",
    "PersonalityEmbeddingCache": "cache",
    "PersonalityEncoder": "encoder",
    "TraitHead": "head",
    "encode_texts": "encode",
    "identity_string": "folder",
    "load_trait_head": "head",
    "pool": "head",
    "predict_traits": "head",
    "PretrainConfig": "config",
    "TraitModel": "pretrain",
    "pretrain_personality": "pretrain",
    "resume_pretraining": "pretrain",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'psamf.personality' has no attribute {name!r}")
    return getattr(importlib.import_module(f"psamf.personality.{_EXPORTS[name]}"), name)
