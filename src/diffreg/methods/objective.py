"""The pairwise objective (VoxelMorph and the methods built on it); the Objective interface
itself is diffreg.training.objective."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import spatial
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .pairs import predict_pair


class PairwiseObjective(Objective):
    """Unsupervised pairwise learning (VoxelMorph): similarity(warp(moving, u), fixed) + λ·reg(u),
    u = nets["net"]([moving, fixed])."""

    def __init__(self, similarity: nn.Module, regulariser: nn.Module, lambda_reg: float,
                 pad_multiple: int = 1, inter_subject: bool = True):
        self.similarity = similarity
        self.regulariser = regulariser
        self.lambda_reg = lambda_reg
        self.pad_multiple = pad_multiple
        self.inter_subject = inter_subject

    def sample(self, data: TrainingSet, rng: np.random.Generator, batch_size: int):
        return data.sample(rng, batch_size, self.inter_subject)

    def __call__(self, nets: nn.ModuleDict, batch) -> dict[str, torch.Tensor]:
        moving, fixed = batch
        disp = predict_pair(nets["net"], moving, fixed, self.pad_multiple)
        sim = self.similarity(spatial.warp(moving, disp), fixed)
        reg = self.regulariser(disp)
        return {"loss": sim + self.lambda_reg * reg, "similarity": sim, "regulariser": reg}
