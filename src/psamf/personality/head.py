"""TraitHead: the pooled encoder embedding P -> Big Five scores, stored beside the encoder.

A personality encoder folder is a plain Hugging Face encoder folder (what ``AutoModel`` reads) plus
``trait_head.safetensors`` (the linear layer) and ``trait_head.json`` (everything needed to rebuild
it). The head reads P directly — by default the first token of the last layer, the vector PSA-MF
uses — so a good trait fit means P itself carries personality information.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from psamf.checkpointing import load_tensors
from psamf.data.dataset import BIG_FIVE
from psamf.device import resolve_device
from psamf.errors import InputError, NotFoundError
from psamf.io import save_tensors, write_json
from psamf.models.text_encoder import pool_tokens as pool  # noqa: F401 (the recipe pools with it)
from psamf.personality.config import ACTIVATIONS
from psamf.personality.encode import encode_texts
from psamf.personality.folder import HEAD_CONFIG, HEAD_WEIGHTS, read_head_config
from psamf.personality.pooling import POOLINGS

_FORMAT_VERSION = 1


class TraitHead(nn.Module):
    """Linear map from P (B, H) to the traits (B, n_traits), optionally squashed to [0, 1].

    ``fallback`` (one value per trait, typically the training means) is what callers predict for
    an empty transcript, where the encoder has nothing to read; it travels with the head.
    """

    def __init__(
        self,
        *,
        hidden_size: int,
        traits: Sequence[str] = BIG_FIVE,
        pooling: str = "first",
        activation: str = "sigmoid",
        fallback: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if activation not in ACTIVATIONS:
            raise InputError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if hidden_size < 1 or not traits:
            raise InputError("TraitHead needs hidden_size >= 1 and at least one trait")
        self.hidden_size = int(hidden_size)
        self.traits = tuple(traits)
        self.pooling = pooling
        self.activation = activation
        self.linear = nn.Linear(self.hidden_size, len(self.traits))
        fb = [0.5] * len(self.traits) if fallback is None else [float(v) for v in fallback]
        if len(fb) != len(self.traits):
            raise InputError(f"fallback has {len(fb)} values for {len(self.traits)} traits")
        self.fallback = fb

    def init_at(self, means: Sequence[float]) -> None:
        """Start as the constant predictor: zero weights, bias giving ``means`` for every input."""
        means_t = torch.as_tensor(list(means), dtype=torch.float32).clamp(1e-4, 1 - 1e-4)
        with torch.no_grad():
            self.linear.weight.zero_()
            bias = torch.logit(means_t) if self.activation == "sigmoid" else means_t
            self.linear.bias.copy_(bias)
        self.fallback = [float(v) for v in means]

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        out = self.linear(pooled)  # (B, H) -> (B, n_traits)
        return torch.sigmoid(out) if self.activation == "sigmoid" else out

    def config(self) -> dict:
        return {
            "format_version": _FORMAT_VERSION,
            "traits": list(self.traits),
            "pooling": self.pooling,
            "activation": self.activation,
            "hidden_size": self.hidden_size,
            "fallback": self.fallback,
            "weights": HEAD_WEIGHTS,
        }

    def save(self, folder: str | Path) -> None:
        """Write ``trait_head.safetensors`` + ``trait_head.json`` into ``folder`` (atomically)."""
        folder = Path(folder)
        tensors = {"weight": self.linear.weight, "bias": self.linear.bias}
        save_tensors(folder / HEAD_WEIGHTS, tensors)
        write_json(folder / HEAD_CONFIG, self.config())


def load_trait_head(folder: str | Path) -> TraitHead | None:
    """Rebuild the head saved in ``folder``; None when the folder has no ``trait_head.json``."""
    folder = Path(folder)
    cfg_path = folder / HEAD_CONFIG
    cfg = read_head_config(folder)  # legacy pooling "cls" already reads as "first"
    if cfg is None:
        return None
    try:
        head = TraitHead(
            hidden_size=int(cfg["hidden_size"]),
            traits=list(cfg["traits"]),
            pooling=cfg.get("pooling", "first"),
            activation=cfg.get("activation", "sigmoid"),
            fallback=cfg.get("fallback"),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"{cfg_path}: not a valid trait head config ({type(err).__name__}: {err}); it needs "
            "'hidden_size', 'traits', 'pooling', 'activation' — re-run psamf pretrain-personality"
        ) from err
    weights_path = folder / HEAD_WEIGHTS
    if not weights_path.is_file():
        raise NotFoundError(f"{weights_path}: missing (it belongs with {cfg_path})")
    tensors = load_tensors(weights_path)  # checks the SHA-256 recorded when it was written
    expected = {"weight": (len(head.traits), head.hidden_size), "bias": (len(head.traits),)}
    for name, shape in expected.items():
        if name not in tensors or tuple(tensors[name].shape) != shape:
            got = tuple(tensors[name].shape) if name in tensors else "absent"
            raise InputError(
                f"{weights_path}: tensor '{name}' should have shape {shape} "
                f"(from {cfg_path}), got {got}"
            )
        if not torch.isfinite(tensors[name]).all():
            raise InputError(f"{weights_path}: tensor '{name}' holds NaN or inf values")
    head.linear.load_state_dict(tensors)
    return head


def predict_traits(
    encoder_folder: str | Path,
    texts: Sequence[str],
    *,
    max_tokens: int = 128,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> list[dict[str, float]]:
    """Big Five scores for each text, read from a folder written by ``pretrain-personality``.

    Empty (whitespace-only) texts get the head's fallback (the training means).
    """
    from transformers import AutoModel, AutoTokenizer

    folder = Path(encoder_folder)
    head = load_trait_head(folder)
    if head is None:
        raise NotFoundError(
            f"{folder / HEAD_CONFIG}: missing; this folder has no trait head — train one with "
            "psamf pretrain-personality"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    encoder = AutoModel.from_pretrained(str(folder))
    hidden = getattr(encoder.config, "hidden_size", None)
    if hidden != head.hidden_size:
        raise InputError(
            f"{folder / HEAD_CONFIG}: hidden_size {head.hidden_size} does not match the encoder's "
            f"{hidden} in {folder / 'config.json'}"
        )
    texts = [str(t) for t in texts]
    keep = [i for i, t in enumerate(texts) if t.strip()]
    out = [dict(zip(head.traits, head.fallback, strict=True)) for _ in texts]
    if keep:
        pooled = encode_texts(
            encoder, tokenizer, [texts[i] for i in keep], pooling=head.pooling,
            max_tokens=max_tokens, batch_size=batch_size, device=resolve_device(device),
        )
        with torch.no_grad():
            scores = head.eval()(pooled).numpy()  # (n_keep, n_traits)
        for row, i in zip(scores, keep, strict=True):
            out[i] = {t: float(v) for t, v in zip(head.traits, row, strict=True)}
    for scores_i in out:
        if not all(math.isfinite(v) for v in scores_i.values()):
            raise InputError(f"{folder}: the model produced non-finite trait scores")
    return out
