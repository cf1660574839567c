"""Named training presets: each is one call of ``TrainConfig`` (the builder exposing every setting).

The ``*_authors`` presets are the authors' TRAINING settings (optimizer, schedule, batch, epochs)
and nothing more: the model keeps psamf's defaults (README "Paper versus code"), the encoder is the
MiniLM (the authors fine-tune bert-base-uncased; set ``model.text_encoder``), and the checkpoint is
still chosen on validation MAE (the authors look at test MAE). ``tests/test_training_config.py``
pins every field below to the spec. The cpu preset's plateau patience (1) and early stopping (3)
are ours, sized for minutes on a CPU.

The CLI's ``--preset`` choices come from ``PRESETS``; add a preset by decorating a function with
``@preset("name")``. ``--preset`` also takes a preset file: a saved config in the layout of a run
folder's ``config.yaml`` (``psamf tune`` exports its best trial as one). Every setting of a preset
can still be changed with ``key=value`` overrides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psamf.errors import InputError
from psamf.models.config import PSAMFConfig
from psamf.training.config import DataConfig, HousekeepingConfig, OptimConfig, TrainConfig

PRESETS: dict[str, Callable[[], TrainConfig]] = {}
DEFAULT_PRESET = "cpu"
PRESET_FILE_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")


def preset(name: str) -> Callable[[Callable[[], TrainConfig]], Callable[[], TrainConfig]]:
    """Register a zero-argument function returning a TrainConfig under ``name``."""

    def register(fn: Callable[[], TrainConfig]) -> Callable[[], TrainConfig]:
        if name in PRESETS:
            raise InputError(f"preset {name!r} is registered twice")
        PRESETS[name] = fn
        return fn

    return register


def is_preset_file(name: str) -> bool:
    """Whether ``name`` names a preset file rather than a registered preset."""
    return name.endswith(PRESET_FILE_SUFFIXES) or Path(name).is_file()


def get_preset(name: str) -> TrainConfig:
    """The config of preset ``name``: a registered name, or a preset file (a ``config.yaml``
    as every run folder holds, e.g. the best trial ``psamf tune`` exports); unknown names are
    refused with the known ones."""
    if name in PRESETS:
        return PRESETS[name]()
    if is_preset_file(name):
        return TrainConfig.load(name)  # the saved-config layout: one config style
    raise InputError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)} or give a "
                     "preset file (FILE.yaml)")


@preset("cpu")
def cpu() -> TrainConfig:
    """CPU-friendly PSA-MF with MiniLM on the built-in sample: minutes on a laptop."""
    return TrainConfig(
        preset="cpu",
        data=DataConfig(name="sample"),
        model=PSAMFConfig(text_encoder="minilm"),
        optim=OptimConfig(encoder_lr=5e-5, other_lr=5e-4, weight_decay=1e-4, grad_clip=1.0,
                          plateau_factor=0.5, plateau_patience=1),
        epochs=4,
        batch_size=32,
        early_stopping_patience=3,
    )


def _authors(dataset: str, *, encoder_lr: float, other_lr: float, batch_size: int,
             **extra: Any) -> TrainConfig:
    """The authors' training settings shared by their MOSI and MOSEI runs; ``extra`` sets further
    TrainConfig fields (housekeeping only).

    ../shared/docs/PSA-MF.md, "Training (authors' settings)": Adam with coupled weight decay 1e-4,
    gradient norm clipped at 1.0, ReduceLROnPlateau on validation MAE with factor 0.5, up to 100
    epochs. The spec does not give the plateau patience or early stopping; the authors' public
    code (HensonXie/PSA-MF, src/config.py ``--when`` 20 as the scheduler's patience; src/solver.py
    runs every epoch, its early-stopping branch disabled) gives patience 20 and no early stop.
    """
    return TrainConfig(
        preset=f"{dataset}_authors",
        data=DataConfig(name=dataset),
        model=PSAMFConfig(text_encoder="minilm"),
        optim=OptimConfig(encoder_lr=encoder_lr, other_lr=other_lr, weight_decay=1e-4,
                          grad_clip=1.0, plateau_factor=0.5, plateau_patience=20),
        epochs=100,
        batch_size=batch_size,
        early_stopping_patience=0,  # 0 = never stop early: all 100 epochs run
        **extra,
    )


@preset("mosi_authors")
def mosi_authors() -> TrainConfig:
    """The authors' CMU-MOSI training settings (spec "Training (authors' settings)"): encoder lr
    5e-5, the rest 5e-4, batch 256."""
    return _authors("mosi", encoder_lr=5e-5, other_lr=5e-4, batch_size=256)


@preset("mosei_authors")
def mosei_authors() -> TrainConfig:
    """The authors' CMU-MOSEI training settings (spec "Training (authors' settings)"): encoder lr
    1e-5, the rest 1e-4, batch 128."""
    return _authors(
        "mosei", encoder_lr=1e-5, other_lr=1e-4, batch_size=128,
        # a MOSEI epoch is long: a kill loses at most 100 steps
        housekeeping=HousekeepingConfig(checkpoint_every_steps=100),
    )


@preset("text_finetune")
def text_finetune() -> TrainConfig:
    """The text-only fine-tuning baseline with the cpu preset's budget (same encoder and seeds)."""
    config = cpu()
    return dataclasses.replace(config, preset="text_finetune",
                               model=config.model.replace(model_type="text_finetune"))


@preset("clips")
def clips() -> TrainConfig:
    """The deployable model for clips: PSA-MF on MOSI + MOSEI transcripts (+P), one run.

    MOSI and MOSEI carry no raw media here (MOSEI has no audio or video features at all), so the
    model that can score any clip's transcript is trained on text: ``data.name=mosi+mosei``
    keeps the text of both, ``model.text_only=true`` builds PSA-MF with no audio/video encoders,
    tokens or attention, so it reads only a transcript and its personality view P (alignment and
    its losses stay). Validation picks the checkpoint on both valid splits; test is reported
    joined and per dataset. Budget as the cpu preset, one epoch fewer: 17,558 training utterances
    are ~550 steps of 32 an epoch, about 0.3-0.6 s a step with the MiniLM on two CPU cores
    (measured), so minutes per epoch, not hours.
    """
    config = cpu()
    return dataclasses.replace(
        config, preset="clips", data=DataConfig(name="mosi+mosei"),
        model=config.model.replace(text_only=True), epochs=3, early_stopping_patience=2,
    )
