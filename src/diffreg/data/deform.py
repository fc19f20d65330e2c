"""Random smooth transforms for synthetic populations (numpy in, numpy out).

Warping and integration go through `diffreg.spatial`, the one warp of the code base (float64 on
the CPU, which is reproducible bit for bit for the byte-identical toy data).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def identity(shape: tuple[int, ...]) -> np.ndarray:
    """(D, *shape) voxel coordinates."""
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))


def warp(arr: np.ndarray, disp: np.ndarray, order: int = 1) -> np.ndarray:
    """out(x) = arr(x + disp(x)); order 1 linear, 0 nearest; border padding."""
    from .. import spatial  # deferred: pulls in torch
    return spatial.warp_numpy(arr, disp, mode="linear" if order else "nearest")


def warp_field(field: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """Warp each channel of a (D, *S) field (linear, border)."""
    return warp(field, disp)


def integrate_velocity(v: np.ndarray, steps: int = 7) -> np.ndarray:
    """Scaling and squaring of a stationary velocity (D, *S): exp(v) as a displacement."""
    import torch

    from .. import spatial  # deferred: pulls in torch
    return spatial.integrate_velocity(torch.from_numpy(np.asarray(v, dtype=np.float64))[None], steps)[0].numpy()


def smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float, channels: int) -> np.ndarray:
    """(channels, *shape) Gaussian-smoothed white noise, each channel scaled to unit std."""
    out = np.empty((channels, *shape), dtype=np.float64)
    for c in range(channels):
        n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
        out[c] = n / max(n.std(), 1e-12)
    return out


def random_velocity(shape: tuple[int, ...], rng: np.random.Generator, smoothness: float,
                    magnitude: float) -> np.ndarray:
    """A smooth stationary velocity (D, *S): unit-std smooth noise times `magnitude` voxels;
    `smoothness` is the Gaussian sigma in voxels (the deformation's spatial scale)."""
    return magnitude * smooth_noise(shape, rng, smoothness, len(shape))


def affine_displacement(shape: tuple[int, ...], matrix: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Displacement of y = A (x - c) + c + t about the grid centre c (backward map)."""
    ndim = len(shape)
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2.0
    x = identity(shape) - centre.reshape(ndim, *([1] * ndim))
    y = np.tensordot(matrix, x, axes=1)
    return y - x + np.asarray(shift, dtype=np.float64).reshape(ndim, *([1] * ndim))


def random_affine(ndim: int, rng: np.random.Generator, max_rotation_deg: float, max_scale: float,
                  max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """A small random rotation x anisotropic scaling, and a shift in voxels."""
    angles = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, 3 if ndim == 3 else 1))
    rot = np.eye(ndim)
    planes = [(0, 1), (0, 2), (1, 2)] if ndim == 3 else [(0, 1)]
    for a, (i, j) in zip(angles, planes):
        r = np.eye(ndim)
        r[i, i] = r[j, j] = np.cos(a)
        r[i, j], r[j, i] = -np.sin(a), np.sin(a)
        rot = rot @ r
    scale = np.diag(1.0 + rng.uniform(-max_scale, max_scale, ndim))
    return rot @ scale, rng.uniform(-max_shift, max_shift, ndim)


def compose_affine_after(u_inner: np.ndarray, matrix: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Displacement of phi(x) = Aff(x + u_inner(x)): the affine is applied last in the backward map,
    evaluated exactly (it is linear) rather than by resampling."""
    shape = u_inner.shape[1:]
    ndim = len(shape)
    y = identity(shape) + u_inner
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2.0
    c = centre.reshape(ndim, *([1] * ndim))
    z = np.tensordot(matrix, y - c, axes=1) + c + np.asarray(shift).reshape(ndim, *([1] * ndim))
    return z - identity(shape)


def bias_field(shape: tuple[int, ...], rng: np.random.Generator, strength: float) -> np.ndarray:
    """A smooth multiplicative field exp(s * n), n a unit-std very smooth noise (scale ~ the image)."""
    n = smooth_noise(shape, rng, sigma=max(shape) / 4.0, channels=1)[0]
    return np.exp(strength * n)
