"""Unsupervised pairwise learning (VoxelMorph, Balakrishnan et al. 2019): a backbone maps
(moving, fixed) to a displacement, trained by similarity(warp(moving), fixed) + λ·regulariser(u).

The backbone, the similarity and the regulariser are names in their registries, so the loss
grids of the papers (LNCC, MSE, MIND, NGF, feature similarities, ...) are configuration only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import spatial
from ..errors import InputError
from ..losses import build_regulariser, build_similarity
from ..nets import build_backbone
from ..nets.small import width_kwargs
from ..training.config import TrainerConfig
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .objective import PairwiseObjective
from .pairs import pad_to_multiple, register_pair
from .result import RegistrationResult


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
        # the default window settings belong to the default similarity only
        if "similarity" in given and "similarity_kwargs" not in given:
            self.similarity_kwargs = {}
        # the default widths (vm2) belong to the VoxelMorph networks only
        if "backbone" in given and "backbone_kwargs" not in given and self.backbone not in VM_BACKBONES:
            self.backbone_kwargs = {}
        width_kwargs(self.backbone, self.width, "voxelmorph")     # an unknown width fails here
        if self.trajectory not in ("none", "scaled", "squaring"):
            raise InputError(f"voxelmorph: trajectory = {self.trajectory!r}: one of none, scaled, squaring")


# the paper defaults as a plain dict (for readers that compare settings)
DEFAULTS = PairwiseConfig().to_dict()


@METHODS.register("voxelmorph")
class PairwiseMethod(Method):
    name = "voxelmorph"
    Config = PairwiseConfig
    cfg: PairwiseConfig

    def __init__(self, ndim: int, config: dict | PairwiseConfig, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        kwargs = {**width_kwargs(c.backbone, c.width, self.name), **c.backbone_kwargs}
        self.nets["net"] = build_backbone(c.backbone, ndim, **kwargs).to(device)
        # built here, not in fit, so that a wrong loss setting fails before any data is read
        self.similarity = build_similarity(c.similarity, **c.similarity_kwargs).to(device)
        self.regulariser = build_regulariser(c.regulariser, **c.regulariser_kwargs).to(device)

    def objective(self, data: TrainingSet) -> PairwiseObjective:
        c = self.cfg
        return PairwiseObjective(self.similarity, self.regulariser, c.lambda_reg, c.pad_multiple, c.inter_subject)

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        c = self.cfg
        result = register_pair(self.nets["net"], moving, fixed, c.pad_multiple)
        if c.trajectory == "scaled":
            result.trajectory = [float(z) * result.displacement for z in c.etas]
            result.trajectory_times = [float(z) for z in c.etas]
        elif c.trajectory == "squaring":
            result.trajectory = squaring_stages(self.nets["net"], moving, fixed, c.pad_multiple)
            steps = len(result.trajectory) - 1
            result.trajectory_times = [2.0 ** (k - steps) for k in range(steps + 1)]   # exp(v / 2^(steps-k))
        return result


@torch.no_grad()
def squaring_stages(net, moving: torch.Tensor, fixed: torch.Tensor, pad_multiple: int) -> list[torch.Tensor]:
    """exp(v / 2^v) for v = steps .. 0 (the last is the registration field) of a velocity backbone."""
    if not hasattr(net, "velocity"):
        raise InputError("trajectory 'squaring' needs a velocity backbone (vm-diff)")
    x, crop = pad_to_multiple(torch.cat([moving, fixed], 1).to(next(net.parameters()).device), pad_multiple)
    v = net.velocity(x)
    shape = v.shape[2:]
    if net.int_downsize > 1:
        v = spatial.resize_field(v, [max(2, n // net.int_downsize) for n in shape])
    u, stages = v / 2 ** net.steps, []
    for k in range(net.steps + 1):
        full = spatial.resize_field(u, shape) if net.int_downsize > 1 else u
        stages.append(full[tuple(crop)].cpu())
        if k < net.steps:
            u = spatial.compose(u, u)
    return stages
