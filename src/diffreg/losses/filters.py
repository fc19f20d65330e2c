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
    """Filter every channel of x (B, C, *S) with the same normalised 1D kernel along each spatial axis.

    Output keeps the input's shape. ``padding`` is "zeros" or "replicate". A box kernel runs as 1D
    average pooling and any other as a grouped convolution over the channels: both measured ~3x
    faster (forward + backward, CPU) than folding channels into the batch.
    """
    ndim = x.ndim - 2
    c = x.shape[1]
    n = kernel.numel()
    r = n // 2
    is_box = bool(torch.all(kernel == kernel[0]))
    conv = F.conv2d if ndim == 2 else F.conv3d
    pool = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    k = kernel.to(dtype=x.dtype, device=x.device)
    y = x
    for axis in range(ndim):
        size = [1] * ndim
        size[axis] = n
        if padding == "zeros":
            pad = [0] * ndim
            pad[axis] = r
            if is_box:
                y = pool(y, tuple(size), stride=1, padding=tuple(pad), count_include_pad=True)
            else:
                y = conv(y, k.view(1, 1, *size).expand(c, 1, *size), padding=tuple(pad), groups=c)
        elif padding == "replicate":
            pad = [0, 0] * ndim
            # F.pad lists the last axis first
            pad[2 * (ndim - 1 - axis)] = r
            pad[2 * (ndim - 1 - axis) + 1] = r
            y = F.pad(y, pad, mode="replicate")
            y = pool(y, tuple(size), stride=1) if is_box else conv(y, k.view(1, 1, *size).expand(c, 1, *size), groups=c)
        else:
            raise ValueError(f"padding must be 'zeros' or 'replicate', got {padding!r}")
    return y


def window_weight(shape, kernel: torch.Tensor, dtype=torch.float32, device=None) -> torch.Tensor:
    """separable_filter of an all-ones image with zero padding, (1, 1, *shape): the fraction of the
    window inside the image. Built from 1D profiles (separable), so it costs no N-D filtering."""
    k = kernel.to(dtype=dtype, device=device)
    r = k.numel() // 2
    is_box = bool(torch.all(kernel == kernel[0]))
    out = None
    for axis, n in enumerate(shape):
        ones = torch.ones((1, 1, n), dtype=dtype, device=device)
        # the same arithmetic as separable_filter, so moments and weights normalise consistently
        if is_box:
            prof = F.avg_pool1d(ones, k.numel(), stride=1, padding=r, count_include_pad=True).view(n)
        else:
            prof = F.conv1d(ones, k.view(1, 1, -1), padding=r).view(n)
        view = [1] * len(shape)
        view[axis] = n
        prof = prof.view(view)
        out = prof if out is None else out * prof
    return out.view(1, 1, *shape)
