"""PSA-MF models: ``build_model(config)`` builds any registered model from a PSAMFConfig.

Registered ``model_type`` values: ``"psamf"`` (PSAMF) and ``"text_finetune"`` (TextFinetune, the
text-only fine-tuning baseline). Every model shares the forward signature and PSAMFOutput.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from psamf.errors import InputError
from psamf.models.baselines import TextFinetune
from psamf.models.config import PSAMFConfig
from psamf.models.personality_encoder import PersonalityEmbeddingCache, PersonalityEncoder
from psamf.models.psamf import PSAMF, PSAMFOutput
from psamf.models.text_encoder import TextEncoder, load_tokenizer

MODEL_REGISTRY: dict[str, type[nn.Module]] = {"psamf": PSAMF, "text_finetune": TextFinetune}


def build_model(config: PSAMFConfig | dict[str, Any]) -> nn.Module:
    """Build the model named by ``config.model_type`` (dicts go via PSAMFConfig.from_dict)."""
    if isinstance(config, dict):
        config = PSAMFConfig.from_dict(config)
    if config.model_type not in MODEL_REGISTRY:
        raise InputError(
            f"model_type must be one of {sorted(MODEL_REGISTRY)}, got {config.model_type!r}"
        )
    return MODEL_REGISTRY[config.model_type](config)


__all__ = [
    "MODEL_REGISTRY",
    "PSAMF",
    "PSAMFConfig",
    "PSAMFOutput",
    "PersonalityEmbeddingCache",
    "PersonalityEncoder",
    "TextEncoder",
    "TextFinetune",
    "build_model",
    "load_tokenizer",
]
