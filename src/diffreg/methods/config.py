"""Typed method settings: one dataclass per method, built from the flat dict the plan, the YAML
and `diffreg train` give. An unknown key or a value of the wrong type is an InputError naming the
key and the method, so a typo stops a run before it trains for hours with a default."""
from __future__ import annotations

import copy
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

    @classmethod
    def settings(cls, ndim: int) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def ndim_defaults(cls, ndim: int) -> dict:
        """Defaults that depend on the number of spatial axes (applied before the given values)."""
        return {}

    def resolve(self, ndim: int, given: set[str]) -> None:
        """Derive settings from others once all are known (`given`: the keys the user set)."""

    @classmethod
    def from_dict(cls: type[C], config: dict, ndim: int, method: str) -> C:
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
        return obj

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainerConfig(MethodConfig):
    """The settings of the one training loop (methods.trainer.Trainer) every learned method has."""
    iterations: int = 1500
    batch_size: int = 1
    lr: float = 1e-4
    seed: int = 0
    log_every: int = 25


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
