"""Typed method settings: one dataclass per method, built from the flat dict the plan, the YAML
and `diffreg train` give. An unknown key or a value of the wrong type is an InputError naming the
key and the method, so a typo stops a run before it trains for hours with a default."""
from __future__ import annotations

import copy
import math
import types
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

from ..errors import InputError

C = TypeVar("C", bound="MethodConfig")


@dataclass
class MethodConfig:
    """Settings of a method. Subclasses add fields (each with the paper's value as default),
    `ndim_defaults` for per-dimension paper values and `resolve` for rules between settings."""

    # `diffreg train` flag -> this method's setting, where the method names it differently
    FLAG_KEYS: ClassVar[dict[str, str]] = {}
    # another accepted name -> the setting it stands for, where the method's paper prints its own
    # symbol for a setting (DiffuseMorph's lambda_phi for lambda_reg; docs/engine.md lists them all);
    # `from_dict` renames it (`canonical`), so config.json and run.json carry the setting's name
    ALIASES: ClassVar[dict[str, str]] = {}
    # a setting's former name -> the setting, read only from the config.json of model folders saved
    # before the rename (methods.base.load_method), so trained models keep loading; a new config
    # with a former name is refused as unknown
    RENAMED: ClassVar[dict[str, str]] = {}
    # settings the report shows beside each row (report.row_settings); `describe(key)` may word them
    REPORTED: ClassVar[tuple[str, ...]] = ()
    # settings that act only when registering (a sampler, its steps, what it saves): the planner keeps
    # them out of the training's config and hash, so that one trained model serves every value, and
    # `diffreg register --settings` applies them to the loaded model
    INFERENCE: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def settings(cls, ndim: int) -> set[str]:
        """The keys a config may hold: the fields and their aliases."""
        return {f.name for f in fields(cls)} | set(cls.ALIASES)

    @classmethod
    def upgrade(cls, saved: dict) -> dict:
        """A saved config (config.json) with its former setting names replaced (RENAMED)."""
        return {cls.RENAMED.get(k, k): v for k, v in saved.items()}

    @classmethod
    def canonical(cls, config: dict, method: str) -> dict:
        """`config` with every alias renamed to its setting (unset values, None, dropped first);
        an alias given beside its setting is an InputError, as the two would disagree silently."""
        out = dict(config)
        for alias, name in cls.ALIASES.items():
            if out.get(alias) is None:
                out.pop(alias, None)
                continue
            if out.get(name) is not None:
                raise InputError(f"settings {alias} and {name} for method {method}: {alias} is another name "
                                 f"for {name}, give one of them")
            out[name] = out.pop(alias)
        return out

    @classmethod
    def ndim_defaults(cls, ndim: int) -> dict:
        """Defaults that depend on the number of spatial axes (applied before the given values)."""
        return {}

    def resolve(self, ndim: int, given: set[str]) -> None:
        """Derive settings from others once all are known (`given`: the keys the user set)."""

    @classmethod
    def from_dict(cls: type[C], config: dict, ndim: int, method: str) -> C:
        config = cls.canonical(config, method)
        known = cls.settings(ndim)
        unknown = sorted(set(config) - known)
        if unknown:
            raise InputError(f"unknown setting(s) {', '.join(unknown)} for method {method} "
                             f"(known: {', '.join(sorted(known))})")
        # None means "the method's default", as `diffreg train` passes unset flags
        given = {k: copy.deepcopy(v) for k, v in config.items() if v is not None}
        values = {**cls.ndim_defaults(ndim), **given}
        hints = typing.get_type_hints(cls)
        obj = cls(**{k: _coerce(method, k, v, hints[k]) for k, v in values.items()})
        obj.resolve(ndim, set(given))
        obj.check_ranges(method)
        return obj

    def check_ranges(self, method: str) -> None:
        """InputError for the first setting outside its range (RANGES), naming it and the method."""
        for f in fields(self):
            rule = RANGES.get(f.name)
            value = getattr(self, f.name)
            if rule is None or isinstance(value, (str, bool)) or value is None:
                continue
            ok, what = rule
            if not ok(value):
                raise InputError(f"setting {f.name} = {value!r} for method {method}: must be {what}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainerConfig(MethodConfig):
    """The settings of the one training loop (training.trainer.Trainer) every learned method has."""
    iterations: int = 1500
    batch_size: int = 1
    lr: float = 1e-4
    seed: int = 0
    log_every: int = 25

    def adam_betas(self) -> tuple[float, float]:
        """Adam's (beta1, beta2); Kingma & Ba's defaults unless a method's code used others."""
        return (0.9, 0.999)

    def make_optimizer(self, params):
        """The optimiser of the Trainer: Adam (lr, adam_betas) unless a method's paper used another."""
        import torch

        return torch.optim.Adam(params, lr=self.lr, betas=self.adam_betas())

    def make_scheduler(self, optimizer, iterations: int):
        """A learning-rate schedule stepped once per iteration, or None (a constant rate)."""
        return None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# Ranges of the settings any method may have (checked after `resolve`, so derived values too).
# lr <= 1: Adam moves each weight by about lr per step whatever the gradient's scale, and the
# weights of our networks are O(0.1): a step of 1 already overwrites them (VoxelMorph diverges
# from lr 1 on the toy data); published registration networks train with 1e-5 .. 1e-3.
RANGES: dict[str, tuple[Any, str]] = {
    "iterations": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "log_every": (lambda v: v >= 1, "an integer >= 1"),
    "pad_multiple": (lambda v: v >= 1, "an integer >= 1"),
    "lr": (lambda v: _finite(v) and 0 < v <= 1, "a number in (0, 1] (Adam moves every weight by about lr per step)"),
    "lambda_reg": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    "lam": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    "seed": (lambda v: isinstance(v, int) and 0 <= v < 2**32, "an integer in [0, 2^32) (numpy's seed range)"),
}


def check_seed(seed: Any, where: str = "--seed") -> int:
    """`seed` when it is an integer numpy and torch both accept, else one InputError line."""
    ok, what = RANGES["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not ok(seed):
        raise InputError(f"{where} {seed}: must be {what}")
    return seed


def _coerce(method: str, key: str, value: Any, hint: Any) -> Any:
    """`value` as type `hint`; ints pass as floats, whole floats as ints, and numeric strings as
    floats (PyYAML reads `1e-4` as a string)."""
    out = _as(value, hint)
    if out is _BAD:
        raise InputError(f"setting {key} = {value!r} for method {method}: expected {_name(hint)}")
    return out


_BAD = object()


def _as(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            out = _as(value, arg)
            if out is not _BAD:
                return out
        return _BAD
    if hint is Any:
        return value
    if hint is type(None):
        return value if value is None else _BAD
    if hint is bool:
        return value if isinstance(value, bool) else _BAD
    if hint is int:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, float) and value.is_integer() else _BAD
    if hint is float:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return _BAD
        return _BAD
    if hint is str:
        return value if isinstance(value, str) else _BAD
    base = origin or hint
    if base is list:
        return list(value) if isinstance(value, (list, tuple)) else _BAD
    if base is dict:
        return value if isinstance(value, dict) else _BAD
    return value


def _name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    base = typing.get_origin(hint) or hint
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(base, str(hint))
