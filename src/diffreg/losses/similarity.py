"""Intensity similarities: MSE and local normalised cross-correlation (LNCC)."""
from __future__ import annotations

import torch

from .base import Similarity, check_pair
from .filters import box_kernel, gaussian_kernel, separable_filter, window_weight
from .registries import SIMILARITIES


@SIMILARITIES.register("mse")
class MSE(Similarity):
    """Mean squared error; similarity = -MSE, loss = MSE."""

    def similarity(self, a, b):
        check_pair(a, b)
        return -((a - b) ** 2).mean()

    def forward(self, a, b):
        check_pair(a, b)
        return ((a - b) ** 2).mean()


def window_kernel(window: str, size: int | None, sigma: float | None) -> torch.Tensor:
    """1D normalised window. box: size (default 9). gaussian: sigma given -> size 2*ceil(3 sigma)+1
    unless size is given; sigma not given -> sigma = size / 3 (MONAI's Gaussian LNCC window)."""
    if window == "box":
        return box_kernel(9 if size is None else size)
    if window == "gaussian":
        if sigma is None:
            size = 9 if size is None else size
            sigma = size / 3.0
        return gaussian_kernel(sigma, size)
    raise ValueError(f"LNCC window must be 'box' or 'gaussian', got {window!r}")


@SIMILARITIES.register("lncc")
class LNCC(Similarity):
    """Local normalised cross-correlation, per channel, averaged over batch, channels and voxels.

    cc(x) = cov_w(a, b) / sqrt(max(var_w(a), eps) * max(var_w(b), eps)) with window statistics
    (box or Gaussian). ``similarity`` is mean cc in [-1, 1] (or mean cc^2 with ``squared=True``,
    VoxelMorph's NCC); the loss is ``1 - similarity``. MONAI's LocalNormalizedCrossCorrelationLoss
    returns ``-mean cc^2`` with zero-padded borders: ``LNCC(squared=True, border="zeros")`` equals
    1 + MONAI's value. Own code because MONAI has neither the signed cc (ICON, DGIR, M2M-Reg) nor
    border-normalised windows.

    border: "normalized" (default) divides each window sum by the window's weight inside the image,
    so statistics near the edge are true local moments and cc is invariant to an affine change of
    intensity everywhere; "zeros" treats outside voxels as 0 (MONAI, VoxelMorph).

    eps_form: "clamp" (default): max(var, eps); "relu": relu(var) + eps, the ICON / official DGIR
    form (eps 1e-5 in their pixel LNCC, 1e-6 in DGIR's LNCC on diffusion features). The two differ
    where a local variance is small, e.g. on flat diffusion feature maps. "product" (squared only):
    cc^2 = cov^2 / (var_a var_b + eps), VoxelMorph's and DiffuseMorph's form, whose window sums
    make their eps (1e-5) equal to eps = 1e-5 / n^2 on these window means (n voxels per window).
    """

    def __init__(self, window: str = "box", size: int | None = None, sigma: float | None = None,
                 squared: bool = False, border: str = "normalized", eps: float = 1e-5,
                 eps_form: str = "clamp"):
        super().__init__()
        if border not in ("normalized", "zeros"):
            raise ValueError(f"LNCC border must be 'normalized' or 'zeros', got {border!r}")
        if eps_form not in ("clamp", "relu", "product"):
            raise ValueError(f"LNCC eps_form must be 'clamp', 'relu' or 'product', got {eps_form!r}")
        if eps_form == "product" and not squared:
            raise ValueError("LNCC eps_form 'product' is defined for squared=True only")
        self.eps_form = eps_form
        self.register_buffer("kernel", window_kernel(window, size, sigma).float(), persistent=False)
        self.squared = squared
        self.border = border
        self.eps = eps

    def cc_map(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Voxel-wise cc (B, C, *S); cc^2 for eps_form "product"."""
        check_pair(a, b)
        c = a.shape[1]
        # one filtering pass over the five moments
        moments = separable_filter(torch.cat([a, b, a * a, b * b, a * b], dim=1), self.kernel)
        if self.border == "normalized":
            moments = moments / window_weight(a.shape[2:], self.kernel, a.dtype, a.device)
        ma, mb, maa, mbb, mab = moments.split(c, dim=1)
        if self.eps_form == "product":      # cc^2 itself: no square root of a rounding-negative product
            cov = mab - ma * mb
            return cov * cov / ((maa - ma * ma) * (mbb - mb * mb) + self.eps)
        if self.eps_form == "relu":
            var_a = torch.relu(maa - ma * ma) + self.eps
            var_b = torch.relu(mbb - mb * mb) + self.eps
        else:
            var_a = (maa - ma * ma).clamp_min(self.eps)
            var_b = (mbb - mb * mb).clamp_min(self.eps)
        return (mab - ma * mb) / torch.sqrt(var_a * var_b)

    def similarity(self, a, b):
        cc = self.cc_map(a, b)
        if self.eps_form == "product":      # cc_map is already cc^2
            return cc.mean()
        return (cc * cc).mean() if self.squared else cc.mean()

    def loss_from_similarity(self, s):
        return 1.0 - s
