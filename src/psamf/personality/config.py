"""PretrainConfig: every setting of the personality pretraining recipe (no heavy imports).

The same config style as ``TrainConfig``: typed fields, named presets (``PRESETS``), ``key=value``
overrides through ``psamf.training.config.apply_overrides``, and the resolved config saved as
``config.yaml`` with the work and the finished output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from psamf.errors import InputError, NotFoundError
from psamf.personality.pooling import POOLINGS

ACTIVATIONS: tuple[str, ...] = ("sigmoid", "none")
LOSSES: tuple[str, ...] = ("mse", "l1")


@dataclass
class PretrainConfig:
    """Every setting of the recipe; saved as ``config.yaml`` and read back by ``--resume``.

    ``preset`` names the preset it started from (informational); ``data`` is the First Impressions
    folder or ``first_impressions`` (resolved under the data root). ``limit`` keeps the first N
    clips of each split; ``baselines`` also scores the frozen encoder + ridge baseline.
    """

    preset: str = "custom"
    data: str = "first_impressions"
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

    def __post_init__(self) -> None:
        self.validate()  # like TrainConfig: a config that exists is a valid one

    def validate(self) -> None:
        if not str(self.data).strip():
            raise InputError("data must be a First Impressions folder or 'first_impressions'")
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

    # --- serialisation (the TrainConfig interface apply_overrides relies on) --------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PretrainConfig:
        """Rebuild from ``to_dict`` output; unknown keys are refused with the valid ones."""
        if not isinstance(data, dict):
            raise InputError(f"a pretraining config must be a mapping, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(f"unknown config key(s) {unknown}; valid keys: {known}")
        config = cls(**data)
        config.validate()
        return config

    def save(self, path: str | Path) -> None:
        from psamf.io import write_text

        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> PretrainConfig:
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"{path}: no such file (is this an unfinished pretraining "
                                "folder?)")
        try:
            return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, TypeError, ValueError) as err:
            raise InputError(f"{path}: not a valid psamf pretraining config ({err})") from err


# --- presets ------------------------------------------------------------------------------------

PRESETS: dict[str, Callable[[], PretrainConfig]] = {
    # The benchmarked recipe (benchmarks/personality_pretrain.md): every default above.
    "minilm": lambda: PretrainConfig(preset="minilm"),
    # Minutes on a CPU: a first look, not a usable encoder.
    "quick": lambda: PretrainConfig(preset="quick", epochs=1, limit=256, baselines=False),
}
DEFAULT_PRESET = "minilm"


def get_preset(name: str) -> PretrainConfig:
    """The config of preset ``name``; unknown names are refused with the known ones."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
