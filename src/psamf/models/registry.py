"""The one model registry: ``@register_model`` fills it; everything that names a model reads it.

A model file registers its class (or a builder function taking a PSAMFConfig) where it is
defined, and declares which inputs beyond the text it reads::

    @register_model("psamf", personality=True, modalities=("audio", "vision"))
    class PSAMF(nn.Module): ...

``build_model(config)``, ``PSAMFConfig.validate`` (hence ``model.model_type=...`` on the CLI),
the training data preparation (which modalities and whether P is computed) and the smoke test over
``list_models()`` all read this registry, so adding a model is one decorated file plus one import
in ``psamf.models``. This module imports neither torch nor the model files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from psamf.errors import InputError

if TYPE_CHECKING:
    from torch import nn

    from psamf.models.config import PSAMFConfig

MODALITIES: tuple[str, ...] = ("audio", "vision")  # the frame-level inputs a model may read

Builder = TypeVar("Builder", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it and which inputs beyond the text it reads.

    ``personality``: forward reads P (still switched off per config by ``use_personality``).
    ``modalities``: the frame features it reads, a subset of ``MODALITIES`` (all of them are
    still dropped by ``text_only``); the data decides which of these a run really has.
    """

    name: str
    build: Callable[[PSAMFConfig], nn.Module]
    personality: bool
    modalities: tuple[str, ...]


_ENTRIES: dict[str, ModelEntry] = {}


def register_model(
    name: str, *, personality: bool, modalities: tuple[str, ...]
) -> Callable[[Builder], Builder]:
    """Decorator registering a model class or builder ``fn(config) -> nn.Module`` under ``name``."""
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise InputError(f"model {name!r}: unknown modalities {unknown}; use {list(MODALITIES)}")

    def register(build: Builder) -> Builder:
        if name in _ENTRIES:
            raise InputError(f"model {name!r} is registered twice (by {_ENTRIES[name].build!r} "
                             f"and {build!r}); pick another name")
        _ENTRIES[name] = ModelEntry(name=name, build=build, personality=personality,
                                    modalities=tuple(modalities))
        return build

    return register


def list_models() -> list[str]:
    """Every registered model name, sorted (the valid ``model_type`` values)."""
    return sorted(_ENTRIES)


def is_model(name: str) -> bool:
    return isinstance(name, str) and name in _ENTRIES


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name is refused with the known ones."""
    if not isinstance(name, str) or name not in _ENTRIES:
        raise InputError(f"model_type must be one of {list_models()}, got {name!r}")
    return _ENTRIES[name]


def build_model(config: PSAMFConfig | dict[str, Any]) -> nn.Module:
    """Build the model named by ``config.model_type`` (dicts go via PSAMFConfig.from_dict)."""
    from psamf.models.config import PSAMFConfig

    if isinstance(config, dict):
        config = PSAMFConfig.from_dict(config)
    return model_entry(config.model_type).build(config)
