"""Separable window filters (box, Gaussian) shared by LNCC, SSIM and MIND."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def box_kernel(size: int) -> torch.Tensor:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd integer, got {size}")
    return torch.full((size,), 1.0 / size, dtype=torch.float64)


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """Normalised 1D Gaussian; ``size`` defaults to 2*ceil(3 sigma)+1 (truncated at 3 sigma)."""
    if sigma <= 0:
        raise ValueError(f"Gaussian sigma must be > 0, got {sigma}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd integer, got {size}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def separable_filter(x: torch.Tensor, kernel: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Filter every channel of x (B, C, *S) with the same 1D kernel along each spatial axis.

    Output keeps the input's shape. ``padding`` is "zeros" or "replicate".
    """
    ndim = x.ndim - 2
    b, c = x.shape[:2]
    k = kernel.to(dtype=x.dtype, device=x.device)
    r = k.numel() // 2
    conv = F.conv2d if ndim == 2 else F.conv3d
    y = x.reshape(b * c, 1, *x.shape[2:])
    for axis in range(ndim):
        shape = [1, 1] + [1] * ndim
        shape[2 + axis] = k.numel()
        if padding == "zeros":
            conv_pad = [0] * ndim
            conv_pad[axis] = r
            y = conv(y, k.view(shape), padding=tuple(conv_pad))
        elif padding == "replicate":
            pad = [0, 0] * ndim
            # F.pad lists the last axis first
            pad[2 * (ndim - 1 - axis)] = r
            pad[2 * (ndim - 1 - axis) + 1] = r
            y = conv(F.pad(y, pad, mode="replicate"), k.view(shape))
        else:
            raise ValueError(f"padding must be 'zeros' or 'replicate', got {padding!r}")
    return y.reshape(b, c, *x.shape[2:])
