"""The settings of VoxelMorph (`voxelmorph`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from ..training.config import TrainerConfig

VM_BACKBONES = ("voxelmorph", "vm-diff")   # the networks that take VoxelMorph's `variant`


@dataclass
class PairwiseConfig(TrainerConfig):
    """VoxelMorph's NCC setting: squared local cc in a 9^d box window, λ=1 with Grad-l2."""
    backbone: str = "voxelmorph"
    backbone_kwargs: dict = field(default_factory=lambda: {"variant": "vm2"})
    width: str = "paper"        # "small": nets.small's widths under backbone_kwargs (short profiles)
    similarity: str = "lncc"
    similarity_kwargs: dict = field(default_factory=lambda: {"window": "box", "size": 9, "squared": True})
    regulariser: str = "diffusion"
    regulariser_kwargs: dict = field(default_factory=dict)
    lambda_reg: float = 1.0
    pad_multiple: int = 16
    inter_subject: bool = True  # False: moving and fixed from one subject (e.g. ED -> ES frames)
    # intermediate fields written at registration (DiffuseMorph's comparison, its Sec. 4.1):
    # "scaled": zeta * u for zeta in `etas` (VM); "squaring": the scaling-and-squaring stages
    # phi^(1/2^v), v = steps .. 0, of a velocity backbone (VM-diff); "none"
    trajectory: str = "none"
    etas: list = field(default_factory=lambda: [k / 6 for k in range(7)])

    def resolve(self, ndim: int, given: set[str]) -> None:
        from ..nets.small import width_kwargs  # deferred: diffreg.nets imports torch

        # the default window settings belong to the default similarity only
        if "similarity" in given and "similarity_kwargs" not in given:
            self.similarity_kwargs = {}
        # the default widths (vm2) belong to the VoxelMorph networks only
        if "backbone" in given and "backbone_kwargs" not in given and self.backbone not in VM_BACKBONES:
            self.backbone_kwargs = {}
        width_kwargs(self.backbone, self.width, "voxelmorph")     # an unknown width fails here
        if self.trajectory not in ("none", "scaled", "squaring"):
            raise InputError(f"voxelmorph: trajectory = {self.trajectory!r}: one of none, scaled, squaring")
