"""PSA-MF models: one registry (``psamf.models.registry``) that every model file fills.

``build_model(config)`` builds the model named by ``config.model_type``; ``list_models()`` lists the
registered names (``"psamf"``, ``"text_finetune"`` the text-only baseline, ...). A new model is one
file whose class (or builder) carries ``@register_model(name, personality=..., modalities=...)``,
imported below so that it registers. Every model shares the forward signature and PSAMFOutput.
"""

from __future__ import annotations

from psamf.models.baselines import TextFinetune
from psamf.models.config import PSAMFConfig
from psamf.models.lmf import LMF
from psamf.models.misa import MISA
from psamf.models.mmim import MMIM
from psamf.models.mult import MulT
from psamf.models.psamf import PSAMF, PSAMFOutput
from psamf.models.registry import (
    ModelEntry,
    build_model,
    is_model,
    list_models,
    model_entry,
    register_model,
)
from psamf.models.selfmm import SelfMM
from psamf.models.text_encoder import TextEncoder, load_tokenizer
from psamf.models.tfn import TFN

__all__ = [
    "LMF",
    "MISA",
    "MMIM",
    "PSAMF",
    "ModelEntry",
    "MulT",
    "PSAMFConfig",
    "PSAMFOutput",
    "SelfMM",
    "TextEncoder",
    "TFN",
    "TextFinetune",
    "build_model",
    "is_model",
    "list_models",
    "load_tokenizer",
    "model_entry",
    "register_model",
]
