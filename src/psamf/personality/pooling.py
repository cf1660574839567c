"""How P pools the personality encoder's last layer: the one vocabulary, ``first | mean``.

It is the sentence-pooling vocabulary of ``pool_tokens`` (which implements both), so the model's
``sentence_pooling``, the training config's ``personality_pooling``, ``pretrain-personality
--pooling``, ``trait_head.json`` and ``PersonalityEncoder`` all say the same two words.
"""

from __future__ import annotations

from psamf.errors import InputError
from psamf.models.config import SENTENCE_POOLINGS

POOLINGS: tuple[str, ...] = SENTENCE_POOLINGS  # ("first", "mean")

# Encoder folders and trait heads written before the vocabulary was unified may say "cls" for the
# first token; this is the one place that reads the old word (nothing writes it any more).
_LEGACY = {"cls": "first"}


def canonical_pooling(value: object, *, where: str = "pooling") -> str:
    """``value`` as one of POOLINGS (legacy ``cls`` -> ``first``); ``where`` names the field or
    file for the error message."""
    pooling = _LEGACY.get(value, value) if isinstance(value, str) else value
    if pooling not in POOLINGS:
        raise InputError(f"{where}: pooling must be one of {list(POOLINGS)}, got {value!r}")
    return pooling  # type: ignore[return-value]
