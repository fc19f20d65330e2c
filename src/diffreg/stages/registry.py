"""Pretraining stage kinds by name: ``fn(config, out, data, seed, device, threads) -> summary``.

A kind writes one file, `out` (e.g. a checkpoint), from its settings and, for kinds that train
on images of the study, the training set (`data`, else None); the summary goes into run.json.
Each kind declares its settings with their defaults when it registers, so a plan can check a
stage's settings (`check_config`) without running it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from diffreg.errors import InputError
from diffreg.registry import Registry

if TYPE_CHECKING:
    from diffreg.methods import TrainingSet

StageKind = Callable[[dict, Path, "TrainingSet | None", int, str, int], dict]

STAGES: Registry = Registry("stage kind")
SETTINGS: dict[str, dict] = {}     # kind -> {setting: default}
USES_DATA: dict[str, bool] = {}    # kind -> trains on the study's training subjects


def register(kind: str, settings: dict, uses_data: bool = False) -> Callable[[StageKind], StageKind]:
    def deco(fn: StageKind) -> StageKind:
        STAGES.register(kind)(fn)
        SETTINGS[kind] = dict(settings)
        USES_DATA[kind] = uses_data
        return fn
    return deco


def get_stage(kind: str) -> StageKind:
    if kind not in STAGES:
        raise InputError(f"unknown stage kind '{kind}' (known: {', '.join(STAGES.names()) or 'none'})")
    return STAGES.get(kind)


def check_config(kind: str, config: dict, where: str = "") -> dict:
    """`config` over the declared defaults of stage kind `kind`; an unknown kind or setting is an
    InputError (prefixed by `where`, e.g. the YAML path of the stage)."""
    prefix = f"{where}: " if where else ""
    if kind not in STAGES:
        raise InputError(f"{prefix}unknown stage kind '{kind}' (known: {', '.join(STAGES.names())})")
    if not isinstance(config, dict):
        raise InputError(f"{prefix}settings of stage kind {kind} must be a mapping, got {type(config).__name__}")
    known = SETTINGS[kind]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise InputError(f"{prefix}unknown setting(s) {', '.join(unknown)} for stage kind {kind} "
                         f"(known: {', '.join(sorted(known))})")
    return {**known, **config}
