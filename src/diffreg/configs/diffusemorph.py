"""The settings of DiffuseMorph (`diffusemorph`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..training.config import TrainerConfig

# per dimensionality: the official configs (config/diffuseMorph_train_{2D,3D}.json)
DEFAULTS = {2: dict(lam=2.0, lr=5e-6), 3: dict(lam=20.0, lr=2e-4)}

# the networks of `network` (methods.diffusemorph.NETWORKS holds their settings)
NETWORK_NAMES = ("official", "small")
BETAS = {"adam": (0.9, 0.999), "official": (0.5, 0.999)}


@dataclass
class DiffuseMorphConfig(TrainerConfig):
    # shown beside the report's rows: what each row ran (a short profile's lr and length included)
    REPORTED: ClassVar[tuple[str, ...]] = ("network", "lam", "lr", "iterations", "betas", "init_weights",
                                           "augment")
    ALIASES: ClassVar[dict[str, str]] = {"lambda_phi": "lambda_reg"}      # the paper's symbol (Eq. 9)
    network: str = "official"
    unet_kwargs: dict = field(default_factory=dict)     # merged over the network's U-Net settings
    field_kwargs: dict = field(default_factory=dict)    # merged over its deformation-net settings
    lam: float = 2.0                 # lambda of Eq. 7, registration vs diffusion loss (per-dimension default: DEFAULTS)
    lambda_reg: float = 1.0          # lambda_phi of Eq. 9, the smoothness weight (paper: 1)
    betas: str = "adam"              # "official": Adam (0.5, 0.999) as the official code
    init_weights: str = "pytorch"    # "official": the official code's init_weights
    augment: str = "none"            # "official": the official loaders' random flips
    timesteps: int = 2000
    beta_start: float = 1e-6
    beta_end: float = 1e-2
    etas: list = field(default_factory=lambda: [float(x) for x in np.linspace(0, 1, 7)])  # the official 7
    eta0: str = "network"
    inter_subject: bool = True       # False: moving and fixed from one subject (cardiac ED -> ES)
    generate: bool = False           # also write a synthetic image at registration (Algorithm 2)
    gen_t: int = 200                 # T of Eq. 12 (paper and code: 200)
    gen_steps: int = 80              # reverse steps over T-1..0: paper 80 (Sec. 4.1, Fig. 7); official code 200
    sampler: str = "ddpm"            # "ddpm": ancestral (the code's p_sample; the paper's WaveGrad-style
                                     # fewer-step schedule), respaced; "ddim": deterministic (an option)

    @classmethod
    def ndim_defaults(cls, ndim: int) -> dict:
        if ndim not in DEFAULTS:
            raise InputError(f"DiffuseMorph registers 2D or 3D images, got {ndim} spatial axes")
        return dict(DEFAULTS[ndim])

    def resolve(self, ndim: int, given: set[str]) -> None:
        for key, known in (("network", NETWORK_NAMES), ("betas", BETAS), ("eta0", ("network", "anchored")),
                           ("sampler", ("ddpm", "ddim")), ("init_weights", ("pytorch", "official")),
                           ("augment", ("none", "official"))):
            if getattr(self, key) not in known:
                raise InputError(f"diffusemorph: {key} = {getattr(self, key)!r}: one of {', '.join(known)}")
        if not 0 < self.gen_t < self.timesteps or self.gen_steps < 0:
            raise InputError(f"diffusemorph: need 0 < gen_t < timesteps ({self.timesteps}) and gen_steps >= 0")
        if any(not 0 <= float(e) <= 1 for e in self.etas):
            raise InputError(f"diffusemorph: every eta must lie in [0, 1], got {self.etas}")

    def adam_betas(self) -> tuple[float, float]:
        return BETAS[self.betas]

    def describe(self, key: str) -> str:
        return str(getattr(self, key))
