"""Normalised gradient fields (Haber & Modersitzki 2006). Not in MONAI."""
from __future__ import annotations

import torch

from .base import Similarity, check_pair
from .registries import SIMILARITIES


def _gradients(x: torch.Tensor) -> torch.Tensor:
    """Central-difference gradient (B, C, D, *S), one-sided at borders."""
    ndim = x.ndim - 2
    return torch.stack(torch.gradient(x, dim=tuple(range(2, ndim + 2))), dim=2)


@SIMILARITIES.register("ngf")
class NGF(Similarity):
    """similarity = mean over voxels and channels of <grad a, grad b>^2 / (|grad a|_e^2 |grad b|_e^2),
    with |g|_e^2 = |g|^2 + eps^2; loss = 1 - similarity.

    Squaring the inner product makes it invariant to intensity inversion (edges of either polarity
    align). ``eps`` is the edge threshold in intensity per voxel: gradients well below it count as
    noise. Self-similarity is 1 where |grad| >> eps.
    """

    def __init__(self, eps: float = 1e-2):
        super().__init__()
        if eps <= 0:
            raise ValueError(f"NGF eps must be > 0, got {eps}")
        self.eps = eps

    def similarity(self, a, b):
        check_pair(a, b)
        ga, gb = _gradients(a), _gradients(b)
        e2 = self.eps ** 2
        dot = (ga * gb).sum(2)
        na = (ga * ga).sum(2) + e2
        nb = (gb * gb).sum(2) + e2
        return (dot * dot / (na * nb)).mean()

    def loss_from_similarity(self, s):
        return 1.0 - s
