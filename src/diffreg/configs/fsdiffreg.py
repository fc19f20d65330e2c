"""The settings of FSDiffReg (`fsdiffreg`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig
from .diffusemorph import BETAS, NETWORK_NAMES


@dataclass
class FSDiffRegConfig(TrainerConfig):
    REPORTED: ClassVar[tuple[str, ...]] = ("network", "lam", "gamma")
    RENAMED: ClassVar[dict[str, str]] = {"lambda_phi": "lambda_reg"}       # model folders saved before
    network: str = "official"
    unet_kwargs: dict = field(default_factory=dict)     # merged over the network's U-Net settings
    lam: float = 20.0               # registration vs diffusion loss; the code: `* 20` on similarity and smoothness
    lambda_reg: float = 1.0         # smoothness weight inside the registration loss (1: the code)
    gamma: float = 1.0              # score-wise weight sigmoid(eps-hat)^gamma (config "gamma": 1)
    betas: str = "official"         # Adam (0.5, 0.999) in model.py; "adam": (0.9, 0.999)
    timesteps: int = 2000
    beta_start: float = 1e-6
    beta_end: float = 1e-2
    lr: float = 2e-4                # config train.optimizer.lr
    inter_subject: bool = True      # False: moving and fixed from one subject (cardiac ED -> ES)

    def resolve(self, ndim: int, given: set[str]) -> None:
        if ndim not in (2, 3):
            raise InputError(f"fsdiffreg registers 2D or 3D images, got {ndim} spatial axes")
        for key, known in (("network", NETWORK_NAMES), ("betas", BETAS)):
            if getattr(self, key) not in known:
                raise InputError(f"fsdiffreg: {key} = {getattr(self, key)!r}: one of {', '.join(known)}")
        if not math.isfinite(self.gamma) or self.gamma < 0 or self.timesteps < 1:
            raise InputError("fsdiffreg: gamma must be a finite number >= 0 and timesteps >= 1")

    def adam_betas(self) -> tuple[float, float]:
        return BETAS[self.betas]

    def describe(self, key: str) -> str:
        return str(getattr(self, key))
