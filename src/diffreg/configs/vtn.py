"""The settings of VTN (`vtn`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig

# named values of n_cascades (docs)
CASCADES = {"diffusereg": 3, "paper": 10, "code": 1}


@dataclass
class VTNConfig(TrainerConfig):
    REPORTED: ClassVar[tuple[str, ...]] = ("n_cascades", "affine")
    n_cascades: int | str = "diffusereg"   # a number, or a name in CASCADES
    affine: bool = True                 # the code: always an affine stem first
    channels: int = 16                  # the code's VTN(channels=16)
    affine_channels: int = 16           # the code's stem widths 16 .. 512
    affine_size: list | None = None     # padded grid of the affine stem (set from the training images)
    lambda_reg: float = 1.0             # the code's reg_factor
    lambda_det: float = 0.1             # the code's det_factor (paper: 0.1)
    lambda_ortho: float = 0.1           # the code's ortho_factor (paper: 0.1)
    flow_scale: float = 20.0            # the code's `pred0 * 20`
    warp_gradient: bool = True          # the code's default: gradients flow through every cascade's warp
    batch_size: int = 4                 # the code's train.py --batch 4
    lr: float = 1e-4                    # the code's --lr (Adam)
    inter_subject: bool = True

    def resolve(self, ndim: int, given: set[str]) -> None:
        if ndim not in (2, 3):
            raise InputError(f"vtn registers 2D or 3D images, got {ndim} spatial axes")
        if isinstance(self.n_cascades, str):
            if self.n_cascades not in CASCADES:
                raise InputError(f"vtn: n_cascades = {self.n_cascades!r}: a number or one of {', '.join(CASCADES)}")
            self.n_cascades = CASCADES[self.n_cascades]
        if self.n_cascades < (0 if self.affine else 1):
            raise InputError(f"vtn: n_cascades = {self.n_cascades}: need >= 1 (>= 0 with the affine stem)")
        if self.channels < 1 or self.affine_channels < 1:
            raise InputError("vtn: channels and affine_channels must be >= 1")
        if self.lambda_det < 0 or self.lambda_ortho < 0:
            raise InputError("vtn: lambda_det and lambda_ortho must be >= 0")
        if self.affine_size is not None:
            if len(self.affine_size) != ndim or any(int(n) < 64 or int(n) % 64 for n in self.affine_size):
                raise InputError(f"vtn: affine_size = {self.affine_size}: {ndim} sides, each a multiple of 64")
            self.affine_size = [int(n) for n in self.affine_size]
