"""Named training presets: each is one call of ``TrainConfig`` (the builder exposing every setting).

Choices the paper leaves open are ours and stated here: plateau patience (cpu 1, authors' presets
5) and early-stopping patience (cpu 3, authors' presets 10 epochs without a better validation MAE).

The CLI's ``--preset`` choices come from ``PRESETS``; add a preset by decorating a function with
``@preset("name")``. Every setting of a preset can still be changed with ``key=value`` overrides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psamf.errors import InputError
from psamf.models.config import PSAMFConfig
from psamf.training.config import DataConfig, OptimConfig, TrainConfig

PRESETS: dict[str, Callable[[], TrainConfig]] = {}
DEFAULT_PRESET = "cpu"


def preset(name: str) -> Callable[[Callable[[], TrainConfig]], Callable[[], TrainConfig]]:
    """Register a zero-argument function returning a TrainConfig under ``name``."""

    def register(fn: Callable[[], TrainConfig]) -> Callable[[], TrainConfig]:
        if name in PRESETS:
            raise InputError(f"preset {name!r} is registered twice")
        PRESETS[name] = fn
        return fn

    return register


def get_preset(name: str) -> TrainConfig:
    """The config of preset ``name``; unknown names are refused with the known ones."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


@preset("cpu")
def cpu() -> TrainConfig:
    """CPU-friendly PSA-MF with MiniLM on the built-in sample: minutes on a laptop."""
    return TrainConfig(
        preset="cpu",
        data=DataConfig(name="sample"),
        model=PSAMFConfig(text_encoder="minilm"),
        optim=OptimConfig(lr_encoder=5e-5, lr_other=5e-4, weight_decay=1e-4, grad_clip=1.0,
                          plateau_factor=0.5, plateau_patience=1),
        epochs=4,
        batch_size=32,
        early_stopping_patience=3,
    )


def _authors(dataset: str, *, lr_encoder: float, lr_other: float, batch_size: int,
             **extra: Any) -> TrainConfig:
    """The authors' settings shared by their MOSI and MOSEI runs (checkpoint still chosen on
    validation MAE, not test); ``extra`` sets further TrainConfig fields."""
    return TrainConfig(
        preset=f"{dataset}_authors",
        data=DataConfig(name=dataset),
        model=PSAMFConfig(text_encoder="minilm"),
        optim=OptimConfig(lr_encoder=lr_encoder, lr_other=lr_other, weight_decay=1e-4,
                          grad_clip=1.0, plateau_factor=0.5, plateau_patience=5),
        epochs=100,
        batch_size=batch_size,
        early_stopping_patience=10,
        **extra,
    )


@preset("mosi_authors")
def mosi_authors() -> TrainConfig:
    """The authors' CMU-MOSI settings (checkpoint still chosen on validation MAE, not test)."""
    return _authors("mosi", lr_encoder=5e-5, lr_other=5e-4, batch_size=256)


@preset("mosei_authors")
def mosei_authors() -> TrainConfig:
    """The authors' CMU-MOSEI settings."""
    return _authors(
        "mosei", lr_encoder=1e-5, lr_other=1e-4, batch_size=128,
        checkpoint_every_steps=100,  # a MOSEI epoch is long: a kill loses at most 100 steps
    )


@preset("text_finetune")
def text_finetune() -> TrainConfig:
    """The text-only fine-tuning baseline with the cpu preset's budget (same encoder and seeds)."""
    config = cpu()
    return TrainConfig.from_dict(
        {**config.to_dict(), "preset": "text_finetune",
         "model": {**config.model.to_dict(), "model_type": "text_finetune"}}
    )
