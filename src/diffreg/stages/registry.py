"""Pretraining stage kinds by name: ``fn(config, out, data, seed, device, threads) -> summary``.

A kind writes one file, `out` (e.g. a checkpoint), from its settings and, for kinds that train
on images of the study, the training set (`data`, else None); the summary goes into run.json.
Each kind declares its settings with their defaults when it registers, so a plan can check a
stage's settings (`check_config`) without running it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from diffreg.registry import SettingsRegistry

if TYPE_CHECKING:
    from diffreg.training.training_set import TrainingSet  # annotations only: it pulls in torch

StageKind = Callable[[dict, Path, "TrainingSet | None", int, str, int], dict]

STAGES: SettingsRegistry = SettingsRegistry("stage kind")
SETTINGS = STAGES.settings         # kind -> {setting: default}
USES_DATA: dict[str, bool] = {}    # kind -> trains on the study's training subjects
get_stage = STAGES.lookup
check_config = STAGES.check_config


def register(kind: str, settings: dict, uses_data: bool = False) -> Callable[[StageKind], StageKind]:
    USES_DATA[kind] = uses_data
    return STAGES.declare(kind, settings)
