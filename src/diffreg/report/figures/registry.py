"""Computed figures by name: ``fn(moving, fixed, config, outdir, seed, device) -> [files written]``.

Each function declares its settings with their defaults when it registers, so a plan can check a
figure's settings (`check_config`) without running it, and the function merges its config with
the same declaration before it runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from diffreg.errors import InputError
from diffreg.registry import Registry

FigureFunction = Callable[[Path, Path, dict, Path, int, str], list[Path]]

FIGURES: Registry = Registry("figure function")
SETTINGS: dict[str, dict] = {}   # name -> {setting: default}


def register(name: str, settings: dict) -> Callable[[FigureFunction], FigureFunction]:
    def deco(fn: FigureFunction) -> FigureFunction:
        FIGURES.register(name)(fn)
        SETTINGS[name] = dict(settings)
        return fn
    return deco


def get_figure(name: str) -> FigureFunction:
    if name not in FIGURES:
        raise InputError(f"unknown figure function '{name}' (known: {', '.join(FIGURES.names()) or 'none'})")
    return FIGURES.get(name)


def check_config(name: str, config: dict, where: str = "") -> dict:
    """`config` over the declared defaults of figure `name`; an unknown name or setting is an
    InputError (prefixed by `where`, e.g. the YAML path of the figure)."""
    prefix = f"{where}: " if where else ""
    if name not in FIGURES:
        raise InputError(f"{prefix}unknown figure function '{name}' (known: {', '.join(FIGURES.names())})")
    if not isinstance(config, dict):
        raise InputError(f"{prefix}settings of figure {name} must be a mapping, got {type(config).__name__}")
    known = SETTINGS[name]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise InputError(f"{prefix}unknown setting(s) {', '.join(unknown)} for figure {name} "
                         f"(known: {', '.join(sorted(known))})")
    return {**known, **config}
