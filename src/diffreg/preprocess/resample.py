"""Resampling to a voxel spacing or to a shape (scipy, on RAS arrays).

scipy rather than MONAI's Spacing: it keeps the NIfTI affine arithmetic explicit and needs no torch."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError


def voxel_sizes(affine: np.ndarray, ndim: int) -> np.ndarray:
    return np.sqrt((affine[:3, :ndim] ** 2).sum(axis=0))


def _resample(arr: np.ndarray, affine: np.ndarray, factors: np.ndarray, out_shape: tuple[int, ...],
              order: int) -> tuple[np.ndarray, np.ndarray]:
    """Output voxel j sits at input coordinate (j + 0.5) * f - 0.5 (voxel centres, extent kept)."""
    nd = arr.ndim
    offset = 0.5 * factors - 0.5
    if order > 0 and np.any(factors > 1):  # anti-alias when shrinking
        sigma = np.where(factors > 1, 0.42 * factors, 0)  # FWHM ~ output spacing
        arr = ndimage.gaussian_filter(arr.astype(np.float32), sigma, mode="nearest")
    out = ndimage.affine_transform(arr, np.diag(factors), offset, output_shape=out_shape, order=order, mode="nearest")
    new_aff = affine.copy()
    new_aff[:3, :nd] = affine[:3, :nd] * factors
    new_aff[:3, 3] = affine[:3, 3] + affine[:3, :nd] @ offset
    return out, new_aff


def to_spacing(arr: np.ndarray, affine: np.ndarray, spacing: Sequence[float],
               order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Resample to `spacing` (mm, one value or one per axis); order 1 images, 0 labels."""
    nd = arr.ndim
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (nd,))
    if np.any(sp <= 0):
        raise InputError(f"--spacing {list(spacing)}: must be positive")
    cur = voxel_sizes(affine, nd)
    factors = sp / cur
    out_shape = tuple(max(1, int(round(n / f))) for n, f in zip(arr.shape, factors))
    return _resample(arr, affine, factors, out_shape, order)


def to_shape(arr: np.ndarray, affine: np.ndarray, shape: Sequence[int], order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Resize to `shape` (the field of view is kept; voxel sizes change)."""
    if len(shape) != arr.ndim:
        raise InputError(f"--resize {list(shape)}: needs {arr.ndim} values for a {arr.ndim}D image")
    factors = np.asarray(arr.shape, dtype=float) / np.asarray(shape, dtype=float)
    return _resample(arr, affine, factors, tuple(int(s) for s in shape), order)
