"""Pretraining stages by kind: the networks a method depends on but that are not trained on the
registration task itself (e.g. DGIR's diffusion feature model). `STAGES` maps a kind to
``fn(config, out, data, seed, device, threads) -> summary``; `diffreg pretrain` runs one.

Importing this package registers every kind; none imports torch until it runs, so the planner
can check kinds and settings cheaply.
"""
from . import adm  # noqa: F401  registers adm_natural_images
from . import m2m_curves  # noqa: F401  registers m2m_training_curves
from . import diffusereg_vtn  # noqa: F401  registers diffusereg_vtn
from . import ldm_morph  # noqa: F401  registers ldm_morph_latent_diffusion
from .registry import SETTINGS, STAGES, USES_DATA, StageKind, check_config, get_stage, register

__all__ = ["SETTINGS", "STAGES", "USES_DATA", "StageKind", "check_config", "get_stage", "register"]
