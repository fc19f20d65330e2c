"""Crop or pad arrays to a fixed shape around a centre (the foreground's bounding-box centre)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def foreground_centre(arr: np.ndarray, threshold: float | None = None) -> tuple[int, ...]:
    """Centre of the bounding box of voxels above `threshold` (default: 5% of the range above the
    minimum); the array centre when nothing is above it."""
    lo, hi = float(arr.min()), float(arr.max())
    thr = lo + 0.05 * (hi - lo) if threshold is None else threshold
    idx = np.argwhere(arr > thr)
    if idx.size == 0:
        return tuple(n // 2 for n in arr.shape)
    return tuple(int((a + b + 1) // 2) for a, b in zip(idx.min(0), idx.max(0)))


def crop_window(shape: Sequence[int], centre: Sequence[int], out_shape: Sequence[int]) -> tuple[int, ...]:
    """Start index (may be negative: padding) of a window of `out_shape` centred on `centre`."""
    return tuple(int(c - o // 2) for c, o in zip(centre, out_shape))


def crop_or_pad(arr: np.ndarray, start: Sequence[int], out_shape: Sequence[int], fill: float = 0) -> np.ndarray:
    """arr[start : start + out_shape], zero-padded where the window leaves the array."""
    out = np.full(tuple(out_shape), fill, dtype=arr.dtype)
    src, dst = [], []
    for s, o, n in zip(start, out_shape, arr.shape):
        a, b = max(s, 0), min(s + o, n)
        if b <= a:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - s, b - s))
    out[tuple(dst)] = arr[tuple(src)]
    return out


def shifted_affine(affine: np.ndarray, start: Sequence[int]) -> np.ndarray:
    """Affine of the cropped grid: voxel 0 of the output is voxel `start` of the input."""
    out = affine.copy()
    nd = len(start)
    out[:3, 3] = affine[:3, 3] + affine[:3, :nd] @ np.asarray(start, dtype=float)
    return out
