"""The settings of LDM-Morph (`ldm_morph`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig

# the registration network's widths: the official, and a small one for short test runs
NETWORKS = {
    "official": {},
    "small": dict(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(2, 2, 2, 2), cross_heads=2),
}


@dataclass
class LDMMorphConfig(TrainerConfig):
    REPORTED: ClassVar[tuple[str, ...]] = ("beta", "lambda_reg", "detach_latent", "inversion")
    iterations: int = 24001           # official train.py --iteration
    lr: float = 1e-4                  # paper Sec. 4.2
    ldm: Any = None                   # latent diffusion file (stage ldm_morph_latent_diffusion or official)
    ldm_arch: dict = field(default_factory=dict)   # its architecture, recorded at training (model.pt holds the weights)
    beta: float = 0.6                 # Eq. 13 (paper: 0.6)
    lambda_reg: float = 0.01          # Eq. 12 (paper: 0.01)
    detach_latent: bool = False       # true: the official code's latent term without gradient
    inversion: str = "q_sample"       # features: "q_sample" (code) or "ddim" (paper's wording)
    feature_t: int = 1                # timestep of the features (paper and code: 1)
    features: bool = True             # LDM-FE (Table 3 ablation: false)
    lgca: bool = True                 # LGCA (Table 3 ablation: false)
    network: str = "official"
    net_kwargs: dict = field(default_factory=dict)
    inter_subject: bool = False       # False: the two frames of one subject (ED -> ES)

    def resolve(self, ndim: int, given: set[str]) -> None:
        if ndim != 2:
            raise InputError(f"ldm_morph registers 2D images, got {ndim} spatial axes")
        if self.network not in NETWORKS:
            raise InputError(f"ldm_morph: network {self.network!r}: one of {', '.join(NETWORKS)}")
        if self.inversion not in ("q_sample", "ddim"):
            raise InputError(f"ldm_morph: inversion {self.inversion!r}: one of q_sample, ddim")
        if not 0 <= self.beta <= 1:
            raise InputError(f"ldm_morph: beta {self.beta} must lie in [0, 1]")
        if self.lgca and not self.features:
            raise InputError("ldm_morph: lgca needs features (LGCA attends between the LDM features and the Swin stream)")

    def describe(self, key: str) -> str:
        return str(getattr(self, key))

    @property
    def needs_ldm(self) -> bool:
        return self.features or self.beta < 1
