"""TrainConfig: every setting of a training run, typed, with ``key=value`` overrides.

A run folder holds the resolved config (``config.yaml``); ``TrainConfig.from_dict`` rebuilds the run
from it alone. Overrides use dotted keys (``epochs=3``, ``model.use_prefusion=false``,
``optim.encoder_lr=3e-5``) and are parsed from the dataclass field types, so a typo or a bad value
is refused with the list of valid keys instead of silently becoming a string.

Every saved config carries ``format`` (CONFIG_FORMAT) and the ``psamf_version`` that wrote it.
``migrate`` brings an older layout up to date on load, one format step at a time, so a run folder
made by an earlier psamf still resumes and evaluates:

- format 1 (no ``format`` key): housekeeping settings were flat top-level keys (``device``,
  ``progress``, ...), and the learning rates were ``optim.lr_encoder`` / ``optim.lr_other``.
- format 2: housekeeping settings under ``housekeeping:``; ``optim.encoder_lr`` / ``optim.other_lr``
  (the names ``PSAMF.parameter_groups`` and personality pretraining use).

The old keys keep working as ``key=value`` overrides (``ALIASES``).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from psamf import __version__
from psamf.data.combine import is_combination, split_names
from psamf.device import DEVICES_HELP
from psamf.errors import InputError, NotFoundError
from psamf.models.config import PSAMFConfig
from psamf.personality.pooling import POOLINGS

CACHE_ENV = "PSAMF_CACHE"
DEFAULT_PERSONALITY_ENCODER = "artifacts/personality-minilm"
AUTO = "auto"
# How P pools the personality encoder's last layer; auto = the folder's trait_head.json, else first.
PERSONALITY_POOLINGS: tuple[str, ...] = (AUTO, *POOLINGS)
# housekeeping.precision: fp32, or autocast to bf16 / fp16 (see psamf.training.precision).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
# The layout of a saved config.yaml; bump it (and add a step to ``migrate``) when keys move.
CONFIG_FORMAT = 2
HOUSEKEEPING_KEYS: tuple[str, ...] = (
    "cache_dir", "checkpoint_every_steps", "device", "num_workers", "progress",
    "precision", "compile",  # newer than format 1; short forms like device=cuda
)
# Old dotted keys -> their current name (format-1 layouts and ``key=value`` overrides).
ALIASES: dict[str, str] = {
    **{key: f"housekeeping.{key}" for key in HOUSEKEEPING_KEYS},
    "optim.lr_encoder": "optim.encoder_lr",
    "optim.lr_other": "optim.other_lr",
}


def check_encoding(name: str, field: str) -> None:
    """Refuse a text encoding Python does not know, naming the field."""
    import codecs

    try:
        codecs.lookup(name)
    except (LookupError, TypeError):
        raise InputError(f"{field}: unknown text encoding {name!r}; use e.g. utf-8, latin-1, "
                         "cp1252 or utf-16") from None


@dataclass(kw_only=True)
class DataConfig:
    """Which data to train on.

    Fields:
        name: ``sample`` (built-in synthetic), ``mosi``, ``mosei`` or a folder; or several
            joined by ``+`` (``mosi+mosei``): one run on all of them, split by split, with only
            the modalities every one has and test metrics also per dataset.
        root: folder holding the named datasets; None = ``$PSAMF_DATA_ROOT`` or ``../shared/data``.
        limit_train / limit_valid / limit_test: keep only the first N utterances of a split
            (quick runs and tests); None = all. For datasets joined by ``+``: the first N of
            each dataset's split.
        labels_encoding: text encoding of the dataset's label.csv (``utf-8``, ``latin-1``,
            ``cp1252``, ``utf-16``, ...); a file that does not decode names the one to try.
    """

    name: str = "sample"
    root: str | None = None
    limit_train: int | None = None
    limit_valid: int | None = None
    limit_test: int | None = None
    labels_encoding: str = "utf-8"

    def validate(self) -> None:
        if not self.name.strip():
            raise InputError("data.name must be a dataset name (sample, mosi, mosei) or a folder")
        if is_combination(self.name, self.root):
            split_names(self.name)  # empty or repeated names fail here, before any loading
        for key in ("limit_train", "limit_valid", "limit_test"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise InputError(f"data.{key} must be >= 1 or none, got {value}")
        check_encoding(self.labels_encoding, "data.labels_encoding")


@dataclass(kw_only=True)
class OptimConfig:
    """Optimizer and schedule (the authors': Adam with coupled weight decay, two lr groups).

    Fields:
        encoder_lr: learning rate of the sentiment encoder (and modules built into it).
        other_lr: learning rate of everything else.
        weight_decay: coupled L2 weight decay (``torch.optim.Adam(weight_decay=...)``).
        grad_clip: max gradient norm; 0 disables clipping.
        plateau_factor / plateau_patience: ReduceLROnPlateau on validation MAE.
    """

    encoder_lr: float = 5e-5
    other_lr: float = 5e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    plateau_factor: float = 0.5
    plateau_patience: int = 2

    def validate(self) -> None:
        for key in ("encoder_lr", "other_lr"):
            if not getattr(self, key) > 0:
                raise InputError(f"optim.{key} must be > 0, got {getattr(self, key)}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise InputError("optim.weight_decay and optim.grad_clip must be >= 0")
        if not 0 < self.plateau_factor < 1:
            raise InputError(f"optim.plateau_factor must be in (0, 1), got {self.plateau_factor}")
        if self.plateau_patience < 0:
            raise InputError(f"optim.plateau_patience must be >= 0, got {self.plateau_patience}")


@dataclass(kw_only=True)
class HousekeepingConfig:
    """How a run is carried out, never what it computes: changing these keeps the results (up to
    rounding, for ``precision`` and ``compile``).

    Fields:
        cache_dir: where P is cached; None = ``$PSAMF_CACHE`` or ``~/.cache/psamf``.
        checkpoint_every_steps: also checkpoint every K optimizer steps (0 = only at epoch ends).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        num_workers: DataLoader worker processes (batches are cheap to build; 0 is usually best).
        progress: show tqdm progress bars (only ever on a terminal).
        precision: ``fp32`` (default), ``bf16`` (autocast; CUDA with compute capability 8.0+, or
            CPU) or ``fp16`` (autocast + gradient scaler; CUDA only). Weights and optimizer state
            stay fp32; metrics are computed in fp32. See psamf.training.precision.
        compile: compile the model's forward with ``torch.compile`` (default false; on the CPU
            it needs a C++ compiler).
    """

    cache_dir: str | None = None
    checkpoint_every_steps: int = 0
    device: str = AUTO
    num_workers: int = 0
    progress: bool = True
    precision: str = "fp32"
    compile: bool = False

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"housekeeping.precision must be one of {list(PRECISIONS)}, "
                             f"got {self.precision!r}")
        for key in ("checkpoint_every_steps", "num_workers"):
            if getattr(self, key) < 0:
                raise InputError(f"housekeeping.{key} must be >= 0, got {getattr(self, key)}")
        if not (self.device in (AUTO, "cpu", "cuda") or self.device.startswith("cuda:")):
            raise InputError(f"housekeeping.device must be one of {DEVICES_HELP}, "
                             f"got {self.device!r}")

    def resolved_cache_dir(self) -> Path:
        """Where personality embeddings are cached (see ``cache_dir``)."""
        if self.cache_dir:
            return Path(self.cache_dir)
        env = os.environ.get(CACHE_ENV)
        return Path(env) if env else Path.home() / ".cache" / "psamf"


@dataclass(kw_only=True)
class TrainConfig:
    """A whole training run: data, model, optimizer, schedule, seeds and housekeeping.

    Fields:
        preset: the preset this config started from (informational).
        data / model / optim / housekeeping: see DataConfig, PSAMFConfig, OptimConfig,
            HousekeepingConfig (device, progress, workers, cache, step checkpoints).
        epochs: maximum number of epochs.
        batch_size / eval_batch_size: training and evaluation batch sizes (eval None = training's).
        early_stopping_patience: stop after this many epochs without a better validation MAE
            (0 = never stop early).
        seeds: one training run per seed; results are summarised as mean ± std.
        personality_encoder: folder or backbone name giving P; ``auto`` =
            ``artifacts/personality-minilm`` if it exists, else the untuned text backbone.
        personality_pooling: how P pools the personality encoder's last layer: ``first``
            token (the paper), ``mean`` over real tokens (psamf's personality pretraining), or
            ``auto`` = the pooling the folder's ``trait_head.json`` was trained with, else first.
            Set it to compare encoders with one thing changed (e.g. the untuned MiniLM, which has
            no trait head, mean-pooled like the pretrained one).
    """

    preset: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: PSAMFConfig = field(default_factory=PSAMFConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int | None = None
    early_stopping_patience: int = 5
    seeds: tuple[int, ...] = (0,)
    personality_encoder: str = AUTO
    personality_pooling: str = AUTO
    housekeeping: HousekeepingConfig = field(default_factory=HousekeepingConfig)

    def __post_init__(self) -> None:
        self.seeds = tuple(self.seeds)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad field and what to use instead."""
        self.data.validate()
        self.model.validate()
        self.optim.validate()
        self.housekeeping.validate()
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise InputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise InputError(f"eval_batch_size must be >= 1 or none, got {self.eval_batch_size}")
        if self.early_stopping_patience < 0:
            raise InputError(f"early_stopping_patience must be >= 0, "
                             f"got {self.early_stopping_patience}")
        if not self.seeds:
            raise InputError("seeds must list at least one seed, e.g. seeds=1,2,3")
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"seeds must be distinct, got {list(self.seeds)}")
        if any(s < 0 for s in self.seeds):
            raise InputError(f"seeds must be >= 0, got {list(self.seeds)}")
        if self.personality_pooling not in PERSONALITY_POOLINGS:
            raise InputError(f"personality_pooling must be one of {list(PERSONALITY_POOLINGS)}, "
                             f"got {self.personality_pooling!r}")

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The saved layout: ``format`` and ``psamf_version`` first, then every field."""
        out = {"format": CONFIG_FORMAT, "psamf_version": __version__, **dataclasses.asdict(self)}
        out["seeds"] = list(self.seeds)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from ``to_dict`` output of this or an older format (see ``migrate``); unknown
        keys are refused with the valid ones."""
        if not isinstance(data, dict):
            raise InputError(f"a training config must be a mapping, got {type(data).__name__}")
        data = migrate(data)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(f"unknown config key(s) {unknown}; valid keys: {valid_keys()}")
        kwargs = dict(data)
        for key, sub in (("data", DataConfig), ("optim", OptimConfig),
                         ("housekeeping", HousekeepingConfig)):
            if key in kwargs:
                kwargs[key] = _sub_from_dict(sub, kwargs[key], key)
        if "model" in kwargs:
            kwargs["model"] = PSAMFConfig.from_dict(dict(kwargs["model"]))
        return cls(**kwargs)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        from psamf.io import write_text

        write_text(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"{path}: no such config file (is this a psamf run folder?)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (yaml.YAMLError, TypeError, ValueError) as err:
            raise InputError(f"{path}: not a valid psamf training config ({err})") from err

    # --- derived values ------------------------------------------------------------------------

    def personality_pooling_arg(self) -> str | None:
        """``personality_pooling`` as PersonalityEncoder's ``pooling`` (None = the folder's)."""
        return None if self.personality_pooling == AUTO else self.personality_pooling

    def uses_personality(self) -> bool:
        return self.model.uses_personality()  # the model registry says which models read P


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A config mapping of any known format brought to CONFIG_FORMAT, without its ``format`` /
    ``psamf_version`` stamps (``data`` is not changed)."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    version = data.pop("psamf_version", None)
    fmt = data.pop("format", 1)  # format 1 predates the stamp
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise InputError(f"config format must be a positive integer, got {fmt!r}")
    if fmt > CONFIG_FORMAT:
        raise InputError(
            f"config format {fmt} was written by psamf {version or 'newer'}; this psamf "
            f"({__version__}) reads formats up to {CONFIG_FORMAT}: upgrade psamf"
        )
    if fmt == 1:
        data = _rename_keys(data)
    return data


def _rename_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Move every key named in ALIASES to its current place (format 1 -> 2)."""
    for old, new in ALIASES.items():
        head, _, tail = old.partition(".")
        source = data.get(head) if tail else data
        if not isinstance(source, dict) or (tail or head) not in source:
            continue
        value = source.pop(tail or head)
        new_head, _, new_tail = new.partition(".")
        target = data.setdefault(new_head, {})
        if isinstance(target, dict):
            target[new_tail] = value
    return data


def _sub_from_dict(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{prefix} must be a mapping of its fields, got {data!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"unknown config key(s) {[f'{prefix}.{k}' for k in unknown]}; "
            f"valid keys: {valid_keys()}"
        )
    obj = cls(**data)
    obj.validate()
    return obj


# --- key=value overrides -------------------------------------------------------------------------


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def valid_keys(cls: type | None = None) -> list[str]:
    """Every dotted key ``apply_overrides`` accepts for config class ``cls`` (default
    TrainConfig), e.g. ``optim.encoder_lr`` (old names in ALIASES are accepted too, but not
    listed)."""
    keys: list[str] = []
    for name, tp in _field_types(cls or TrainConfig).items():
        if dataclasses.is_dataclass(tp):
            keys.extend(f"{name}.{sub}" for sub in _field_types(tp))
        else:
            keys.append(name)
    return keys


def parse_value(text: str, tp: Any, key: str) -> Any:
    """Parse ``text`` as the type ``tp`` (int, float, bool, str, X | None, tuple[int, ...])."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if text.strip().lower() in ("none", "null", "") and len(args) < len(typing.get_args(tp)):
            return None
        if len(args) == 1:
            return parse_value(text, args[0], key)
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        parts = [p for p in text.replace(" ", "").split(",") if p]
        return tuple(parse_value(p, item, key) for p in parts)
    try:
        if tp is bool:
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise InputError(text)
        if tp is int:
            return int(text)
        if tp is float:
            value = float(text)
            if value != value:
                raise InputError(text)
            return value
        if tp is str:
            return text
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(tp, str(tp))
        raise InputError(f"bad value for {key}: {text!r} is not {kind}") from None
    raise InputError(f"{key}: cannot parse values of type {tp}")  # pragma: no cover


def parse_overrides(items: list[str], cls: type | None = None) -> dict[str, Any]:
    """``["epochs=3", "model.use_prefusion=false"]`` -> {dotted key: typed value}, typed by the
    fields of the config dataclass ``cls`` (default TrainConfig; any dataclass whose fields are
    plain values or dataclasses of them, e.g. ``PretrainConfig``). For TrainConfig an old key
    (``device``, ``optim.lr_encoder``, see ALIASES) is returned under its current name."""
    cls = cls or TrainConfig
    parsed: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"override {item!r} is not key=value; valid keys: {valid_keys(cls)}")
        key, text = item.split("=", 1)
        key, tp = field_type(key, cls)
        parsed[key] = parse_value(text, tp, key)
    return parsed


def field_type(key: str, cls: type | None = None) -> tuple[str, Any]:
    """(current name, field type) of the dotted ``key`` of config class ``cls`` (default
    TrainConfig; old names in ALIASES are accepted); an unknown key is refused with the valid
    ones."""
    cls = cls or TrainConfig
    key = (ALIASES if cls is TrainConfig else {}).get(key.strip(), key.strip())
    head, _, tail = key.partition(".")
    tp = _field_types(cls).get(head)
    if tp is not None and dataclasses.is_dataclass(tp):
        tp = _field_types(tp).get(tail) if tail else None
    elif tail:
        tp = None
    if tp is None:
        raise InputError(f"unknown config key {key!r}; valid keys: {valid_keys(cls)}")
    return key, tp


def with_flags_and_overrides(config: Any, flags: dict[str, Any], overrides: list[str]) -> Any:
    """A command's config: ``config`` (from a preset), then its typed option flags (dotted keys),
    then the ``key=value`` overrides typed for ``config``'s class (later wins)."""
    merged = {**flags, **parse_overrides(list(overrides), type(config))}
    return apply_overrides(config, merged) if merged else config


def apply_overrides(config: Any, items: list[str] | dict[str, Any]) -> Any:
    """A new, validated config of the same class with ``key=value`` overrides applied (strings or
    a parsed dict); nested dataclass fields are replaced with ``dataclasses.replace``."""
    cls = type(config)
    overrides = parse_overrides(items, cls) if isinstance(items, list) else items
    aliases = ALIASES if cls is TrainConfig else {}
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        head, _, tail = aliases.get(key, key).partition(".")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            top[head] = value
    try:
        subs = {head: dataclasses.replace(getattr(config, head), **fields)
                for head, fields in nested.items()}
        return dataclasses.replace(config, **top, **subs)  # __post_init__ validates the whole
    except (TypeError, ValueError) as err:
        given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise InputError(f"bad override ({given}): {err}") from err
