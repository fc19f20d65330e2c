"""Unsupervised pairwise learning (VoxelMorph, Balakrishnan et al. 2019): a backbone maps
(moving, fixed) to a displacement, trained by similarity(warp(moving), fixed) + λ·regulariser(u).

The backbone, the similarity and the regulariser are names in their registries, so the loss
grids of the papers (LNCC, MSE, MIND, NGF, feature similarities, ...) are configuration only.
"""
from __future__ import annotations


import torch

from .. import spatial
from ..configs.pairwise import PairwiseConfig
from ..errors import InputError
from ..losses import build_regulariser, build_similarity
from ..nets import build_backbone
from ..nets.small import width_kwargs
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .objective import PairwiseObjective
from .pairs import pad_to_multiple, register_pair
from .result import RegistrationResult


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
