"""The search space of ``psamf tune``: which config keys a trial samples, and from what.

One dimension per ``--space KEY=KIND:ARGS`` option, KEY being any dotted ``TrainConfig`` key that
changes what a run computes (so not ``data.name``, ``data.root``, ``seeds``, ``housekeeping.*``):

- ``float:LOW:HIGH``   uniform real in [LOW, HIGH] (float keys)
- ``log:LOW:HIGH``     log-uniform real in [LOW, HIGH], LOW > 0 (float keys)
- ``int:LOW:HIGH``     uniform integer in [LOW, HIGH], both included (integer keys)
- ``choice:A,B,...``   one of two or more distinct values, typed as the key (any plain key)

Each option is checked before any trial runs: the kind must suit the key's type, and every bound
and choice must pass the config's own validation, so a trial never fails on its sampled settings.
The Optuna parameter names are the dotted keys, so a trial's ``params`` are ``key=value``
overrides of the base config as they stand.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from psamf.errors import InputError
from psamf.training.config import TrainConfig, apply_overrides, field_type, parse_value

KINDS: tuple[str, ...] = ("float", "log", "int", "choice")
# Keys that pick the data, the seeds or housekeeping: fixed for a study (key=value), not searched.
FIXED_KEYS: tuple[str, ...] = ("preset", "seeds", "data.name", "data.root", "data.labels_encoding")
# PSA-MF's default space: the two learning rates (the authors use 5e-5 / 5e-4 on MOSI and
# 1e-5 / 1e-4 on MOSEI), the batch size, dropout and the weights of the two auxiliary losses
# around their defaults (models/config.py: w_ps 0.1, w_clm 0.09).
DEFAULT_SPACE: tuple[str, ...] = (
    "optim.encoder_lr=log:1e-5:2e-4",
    "optim.other_lr=log:1e-4:2e-3",
    "batch_size=choice:16,32,64",
    "model.dropout=float:0.0:0.3",
    "model.w_ps=log:0.01:1.0",
    "model.w_clm=log:0.01:1.0",
)


@dataclass(frozen=True)
class Dimension:
    """One searched key: ``kind`` in KINDS, bounds for float / log / int, values for choice."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """This dimension's value for an Optuna trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, float(self.low), float(self.high),
                                   log=self.kind == "log")

    def text(self) -> str:
        """The ``--space`` option that gives this dimension."""
        if self.kind == "choice":
            return f"{self.key}=choice:{','.join(_show(v) for v in self.choices)}"
        return f"{self.key}={self.kind}:{_show(self.low)}:{_show(self.high)}"


def _show(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def _base_type(tp: Any) -> Any:
    """``int | None`` -> int (a searched value is never none unless a choice lists it)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def parse_dimension(option: str, base: TrainConfig) -> Dimension:
    """One ``KEY=KIND:ARGS`` option, checked against ``base`` (see the module docstring)."""
    where = f"--space {option}"
    key_text, sep, spec = option.partition("=")
    kind, sep2, args = spec.partition(":")
    if not sep or not sep2 or not key_text.strip():
        raise InputError(f"{where}: write KEY=KIND:ARGS with KIND one of {', '.join(KINDS)}, e.g. "
                         "optim.encoder_lr=log:1e-5:2e-4 or batch_size=choice:16,32")
    try:
        key, tp = field_type(key_text)
    except InputError:
        raise InputError(f"{where}: unknown config key {key_text.strip()!r} (psamf train --help "
                         "names them; an unknown key=value override lists them all)") from None
    if key in FIXED_KEYS or key.startswith("housekeeping."):
        raise InputError(f"{where}: {key} cannot be searched; fix it for the whole study "
                         f"({key}=VALUE or the matching option)")
    kind = kind.strip()
    if kind not in KINDS:
        raise InputError(f"{where}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    plain = _base_type(tp)
    if plain not in (bool, int, float, str):
        raise InputError(f"{where}: {key} holds a list, not one value; it cannot be searched")
    if kind == "choice":
        texts = [t.strip() for t in args.split(",")]
        if len(texts) < 2 or any(not t for t in texts):
            raise InputError(f"{where}: choice needs two or more comma-separated values (one "
                             f"value is a fixed setting: {key}=VALUE)")
        values = tuple(_parse(t, tp, key, where) for t in texts)
        if len(set(values)) != len(values):
            raise InputError(f"{where}: choice lists a value twice")
        dim = Dimension(key=key, kind=kind, choices=values)
        _check_values(dim, base, values, where)
        return dim
    want = int if kind == "int" else float
    if plain is not want:
        other = {int: "int:LOW:HIGH or choice:...",
                 float: "float:LOW:HIGH, log:LOW:HIGH or choice:..."}.get(plain, "choice:...")
        raise InputError(f"{where}: {key} is {plain.__name__}-valued; use {other}")
    bounds = args.split(":")
    if len(bounds) != 2:
        raise InputError(f"{where}: {kind} needs LOW:HIGH, e.g. {key}={kind}:1:4"
                         if kind == "int" else f"{where}: {kind} needs LOW:HIGH")
    low, high = (_parse(b.strip(), want, key, where) for b in bounds)
    if not low < high:
        raise InputError(f"{where}: LOW must be below HIGH, got {low} and {high}")
    if kind == "log" and low <= 0:
        raise InputError(f"{where}: log needs LOW > 0, got {low}")
    dim = Dimension(key=key, kind=kind, low=low, high=high)
    _check_values(dim, base, (low, high), where)
    return dim


def _parse(text: str, tp: Any, key: str, where: str) -> Any:
    try:
        return parse_value(text, tp, key)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def _check_values(dim: Dimension, base: TrainConfig, values: tuple[Any, ...], where: str) -> None:
    """Every extreme / choice must make a valid config (so no trial fails on its settings)."""
    for value in values:
        try:
            apply_overrides(base, {dim.key: value})
        except InputError as err:
            raise InputError(f"{where}: {dim.key}={_show(value)} is refused by the config "
                             f"({err})") from None


def parse_space(options: list[str] | tuple[str, ...], base: TrainConfig,
                fixed: list[str] | tuple[str, ...] = ()) -> tuple[Dimension, ...]:
    """The dimensions of ``options`` (DEFAULT_SPACE when empty), each key once and none of them
    also fixed by a ``key=value`` override in ``fixed`` (dotted keys)."""
    dims = tuple(parse_dimension(o, base) for o in (options or DEFAULT_SPACE))
    seen: set[str] = set()
    for dim in dims:
        if dim.key in seen:
            raise InputError(f"--space: {dim.key} is given twice")
        seen.add(dim.key)
        if dim.key in fixed:
            raise InputError(f"--space {dim.text()}: {dim.key} is also fixed by {dim.key}=...; "
                             "search it or fix it, not both")
    return dims


def suggest(space: tuple[Dimension, ...], trial: Any) -> dict[str, Any]:
    """{dotted key: value} for one trial (Optuna parameter names = the keys)."""
    return {dim.key: dim.suggest(trial) for dim in space}
