"""A registration pair with a known smooth warp, made in code: for checking that a baseline
recovers the warp and for timing baselines on a fixed workload.

The moving image holds a few blurred ellipsoids (labels 1..3) of different brightness on a dark
background; the fixed image is the moving image warped by a smooth sinusoidal displacement
``u_true`` with the project's warp, so ``warp(moving, u_true) == fixed`` and a perfect
registration returns ``u_true``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .. import spatial
from ..io import write_image


@dataclass
class KnownPair:
    fixed: np.ndarray
    moving: np.ndarray
    fixed_labels: np.ndarray
    moving_labels: np.ndarray
    u_true: np.ndarray          # (D, *S) voxels, backward map
    affine: np.ndarray

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write the four images as NIfTI into ``folder``; returns their paths by role."""
        folder = Path(folder)
        paths = {k: folder / f"{k}.nii.gz" for k in ("fixed", "moving", "fixed_labels", "moving_labels")}
        for key, path in paths.items():
            arr = getattr(self, key)
            write_image(path, arr.astype(np.int16 if key.endswith("labels") else np.float32), self.affine)
        return paths


def _ellipsoids(shape: tuple[int, ...]) -> np.ndarray:
    """Label map of three overlapping-free ellipsoids placed relative to the grid size."""
    ndim = len(shape)
    grid = spatial.identity_grid(shape)[0].numpy().astype(np.float64)
    n = np.asarray(shape, dtype=np.float64).reshape(ndim, *([1] * ndim))
    x = grid / (n - 1)  # in [0, 1]
    blobs = [  # (centre, radii) in fractions of the grid, per axis
        ([0.3, 0.33, 0.4], [0.2, 0.2, 0.26]),
        ([0.7, 0.36, 0.55], [0.17, 0.22, 0.24]),
        ([0.5, 0.74, 0.5], [0.28, 0.15, 0.28]),
    ]
    labels = np.zeros(shape, dtype=np.int16)
    for k, (c, r) in enumerate(blobs, start=1):
        d = sum(((x[i] - c[i]) / r[i]) ** 2 for i in range(ndim))
        labels[(d <= 1.0) & (labels == 0)] = k
    return labels


def smooth_warp(shape: tuple[int, ...], amplitude: float) -> np.ndarray:
    """(D, *S) sinusoidal displacement, one period across the grid, peak ``amplitude`` voxels;
    for amplitude < N / (2 pi) per axis its Jacobian stays positive."""
    ndim = len(shape)
    grid = spatial.identity_grid(shape)[0].numpy().astype(np.float64)
    u = np.zeros((ndim, *shape))
    for d in range(ndim):
        other = (d + 1) % ndim
        phase = 2 * np.pi * grid[other] / (shape[other] - 1)
        u[d] = amplitude * np.sin(phase + 0.7 * d)
    return u


def known_pair(shape: tuple[int, ...], amplitude: float | None = None,
               affine: np.ndarray | None = None) -> KnownPair:
    """The pair described in the module docstring, 2D or 3D. The default amplitude, 2.5 voxels
    capped at 6% of the smallest axis, keeps |grad u| below about 0.4."""
    if amplitude is None:
        amplitude = min(2.5, 0.06 * min(shape))
    labels = _ellipsoids(shape)
    brightness = np.array([0.0, 0.45, 0.75, 1.0])
    image = ndimage.gaussian_filter(brightness[labels], sigma=1.0)
    # a gentle intensity ramp inside the objects gives the metrics texture to work with
    ramp = spatial.identity_grid(shape)[0].numpy().sum(0) / sum(shape)
    moving = np.clip(image * (0.85 + 0.3 * ramp), 0.0, 1.0).astype(np.float32)
    u_true = smooth_warp(shape, amplitude)
    fixed = spatial.warp_numpy(moving.astype(np.float64), u_true, mode="linear").astype(np.float32)
    fixed_labels = spatial.warp_numpy(labels, u_true, mode="nearest")
    return KnownPair(fixed=fixed, moving=moving, fixed_labels=fixed_labels, moving_labels=labels,
                     u_true=u_true, affine=np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64))
