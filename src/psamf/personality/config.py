"""PretrainConfig: every setting of the personality pretraining recipe (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from psamf.errors import InputError
from psamf.personality.pooling import POOLINGS

ACTIVATIONS: tuple[str, ...] = ("sigmoid", "none")
LOSSES: tuple[str, ...] = ("mse", "l1")


@dataclass
class PretrainConfig:
    """Every setting of the recipe; saved with the run and compared on resume."""

    backbone: str = "minilm"
    epochs: int = 4
    batch_size: int = 32
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of all optimizer steps
    max_tokens: int = 128
    pooling: str = "mean"  # beat "first" on validation (benchmarks/personality_pretrain.md)
    activation: str = "sigmoid"
    loss: str = "mse"
    grad_clip: float = 1.0
    seed: int = 0
    limit: int | None = None  # first N clips of each split, for small runs
    baselines: bool = True
    eval_batch_size: int = 64

    def validate(self) -> None:
        if self.pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.activation not in ACTIVATIONS:
            raise InputError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("epochs", "batch_size", "max_tokens", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 2:
            raise InputError(f"limit must be >= 2 clips per split, got {self.limit}")
        if not 0.0 <= self.warmup < 1.0:
            raise InputError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if self.encoder_lr < 0 or self.head_lr <= 0 or self.weight_decay < 0:
            raise InputError("learning rates and weight decay must be non-negative (head lr > 0)")
