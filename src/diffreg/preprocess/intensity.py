"""Intensity normalisation to [0, 1]: min-max, percentile clipping, and PET pons normalisation."""
from __future__ import annotations

import numpy as np

from ..errors import InputError

METHODS = ("minmax", "percentile", "none")


def minmax(arr: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(x - min) / (max - min), statistics over `mask` if given; a constant image maps to 0."""
    vals = arr[mask] if mask is not None else arr
    lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        return np.zeros_like(arr, dtype=np.float32)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def percentile_clip(arr: np.ndarray, lower: float = 0.0, upper: float = 99.9,
                    mask: np.ndarray | None = None) -> np.ndarray:
    """Clip to the [lower, upper] percentiles (over `mask`, default all voxels), then min-max.
    M2M-Reg: upper 99.9th percentile, lower 0."""
    if not 0.0 <= lower < upper <= 100.0:
        raise InputError(f"percentiles {lower}, {upper}: need 0 <= lower < upper <= 100")
    vals = arr[mask] if mask is not None else arr
    lo, hi = np.percentile(vals, [lower, upper])
    if hi <= lo:
        return np.zeros_like(arr, dtype=np.float32)
    return ((np.clip(arr, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def pons_normalise(pet: np.ndarray, pons_mask: np.ndarray, upper: float | None = 99.9) -> np.ndarray:
    """PET SUVR to the pons (the reference region of FDG-PET): divide by the mean uptake inside
    `pons_mask`, then (optionally) clip at the `upper` percentile and min-max to [0, 1]."""
    pons_mask = np.asarray(pons_mask, dtype=bool)
    if pons_mask.shape != pet.shape:
        raise InputError(f"pons mask shape {pons_mask.shape} differs from the PET image {pet.shape}")
    if not pons_mask.any():
        raise InputError("pons mask is empty")
    ref = float(pet[pons_mask].mean())
    if ref <= 0:
        raise InputError(f"mean PET uptake in the pons is {ref:g} (must be > 0)")
    suvr = pet / ref
    return percentile_clip(suvr, 0.0, upper) if upper is not None else suvr.astype(np.float32)


def pons_mask(labels: np.ndarray, values, middle_third: bool = True, axis: int = -1) -> np.ndarray:
    """Pons region from a label map. FreeSurfer has no pons label: its brainstem (aseg 16; group 9
    after the 11-group merge) spans midbrain, pons and medulla from top to bottom, so by default the
    middle third of the brainstem's extent along the inferior-superior axis (RAS: the last) is kept."""
    m = np.isin(labels, list(values))
    if not middle_third or not m.any():
        return m
    axis = axis % m.ndim
    other = tuple(a for a in range(m.ndim) if a != axis)
    rows = np.flatnonzero(m.any(axis=other))
    lo, hi = rows.min(), rows.max() + 1
    third = (hi - lo) / 3.0
    keep = np.zeros(m.shape[axis], bool)
    keep[int(round(lo + third)):int(round(lo + 2 * third))] = True
    shape = [1] * m.ndim
    shape[axis] = -1
    return m & keep.reshape(shape)


def normalise(arr: np.ndarray, method: str = "minmax", lower: float = 0.0, upper: float = 99.9) -> np.ndarray:
    if method == "minmax":
        return minmax(arr)
    if method == "percentile":
        return percentile_clip(arr, lower, upper)
    if method == "none":
        return arr.astype(np.float32)
    raise InputError(f"--intensity {method}: unknown (choose from {', '.join(METHODS)})")
