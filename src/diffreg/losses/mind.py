"""MIND-SSC descriptors (Heinrich et al. 2013) in 2D and 3D, and the similarity built on them.

Not in MONAI. Self-similarity context: for each pair of immediate neighbours (p, q) at distance
sqrt(2) apart (12 pairs of the 6-neighbourhood in 3D, 4 pairs of the 4-neighbourhood in 2D),
scaled by ``dilation``, the patch distance D_pq(x) = box_patch[(I(x+p) - I(x+q))^2]; then
MIND_pq(x) = exp(-(D_pq - min_pq D) / V(x)) with V the mean of the D_pq over pairs (clamped to
[1e-3, 1e3] times its image mean). Invariant to affine intensity changes, including inversion.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from .base import Similarity, check_pair
from .filters import box_kernel, separable_filter
from .registries import SIMILARITIES


def ssc_pairs(ndim: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Unordered pairs of orthogonal unit neighbours (p . q = 0): 4 in 2D, 12 in 3D."""
    units = []
    for d in range(ndim):
        for s in (-1, 1):
            e = [0] * ndim
            e[d] = s
            units.append(tuple(e))
    return [(p, q) for p, q in itertools.combinations(units, 2) if sum(a * b for a, b in zip(p, q)) == 0]


def _shift(x_pad: torch.Tensor, offset, pad: int, shape) -> torch.Tensor:
    """x(. + offset) from an edge-padded copy (padding ``pad`` on every side)."""
    idx = [slice(None), slice(None)] + [slice(pad + o, pad + o + n) for o, n in zip(offset, shape)]
    return x_pad[tuple(idx)]


def mind_ssc(img: torch.Tensor, radius: int = 2, dilation: int = 2) -> torch.Tensor:
    """MIND-SSC descriptor of img (B, C, *S) -> (B, C * K, *S), K = 4 (2D) or 12 (3D).

    radius: half-width of the box patch; dilation: neighbour distance in voxels.
    """
    ndim = img.ndim - 2
    if ndim not in (2, 3):
        raise ValueError(f"MIND-SSC needs 2 or 3 spatial axes, got {tuple(img.shape)}")
    b, c = img.shape[:2]
    shape = img.shape[2:]
    x = img.reshape(b * c, 1, *shape)
    pad_mode = "replicate"
    xp = F.pad(x, [dilation] * (2 * ndim), mode=pad_mode)
    dists = []
    for p, q in ssc_pairs(ndim):
        po = [dilation * v for v in p]
        qo = [dilation * v for v in q]
        dists.append((_shift(xp, po, dilation, shape) - _shift(xp, qo, dilation, shape)) ** 2)
    # box patch sum as three 1D passes rather than one (2r+1)^D window
    d = separable_filter(torch.cat(dists, dim=1), box_kernel(2 * radius + 1), padding="replicate")
    d = d - d.min(dim=1, keepdim=True).values
    var = d.mean(dim=1, keepdim=True)
    mean_var = var.mean(dim=tuple(range(1, ndim + 2)), keepdim=True)
    var = torch.maximum(torch.minimum(var, mean_var * 1000.0), mean_var * 0.001)
    # all-constant image: every distance is 0 and so is var; the descriptor is then exp(0) = 1
    mind = torch.exp(-d / var.clamp_min(1e-10))
    return mind.reshape(b, -1, *shape)


@SIMILARITIES.register("mind")
class MIND(Similarity):
    """similarity = -mean squared difference of MIND-SSC descriptors; loss = that MSE."""

    def __init__(self, radius: int = 2, dilation: int = 2):
        super().__init__()
        self.radius = radius
        self.dilation = dilation

    def forward(self, a, b):
        check_pair(a, b)
        return ((mind_ssc(a, self.radius, self.dilation) - mind_ssc(b, self.radius, self.dilation)) ** 2).mean()

    def similarity(self, a, b):
        return -self.forward(a, b)
