"""Physical-space fields of external tools -> the project's voxel-unit displacement.

Our images are arrays in RAS-canonical order with a NIfTI affine ``A`` (voxel index -> RAS mm).
A tool maps a fixed-grid voxel ``x`` to a physical point ``p_m`` in the moving image's space; the
voxel displacement is then ``u(x) = A_m^-1 p_m - x`` (moving voxel index minus fixed voxel index),
which is what ``warp(moving, u)`` samples. ITK/ANTs work in LPS mm with (origin, spacing,
direction); NiftyReg writes RAS mm. Everything here is plain linear algebra on numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# RAS <-> LPS: negate the first two world axes
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class ItkGeometry:
    """ITK image geometry: physical point = origin + direction @ (spacing * index), in LPS mm."""
    origin: np.ndarray     # (D,)
    spacing: np.ndarray    # (D,)
    direction: np.ndarray  # (D, D), columns are the axes' unit vectors

    @property
    def index_to_physical(self) -> np.ndarray:
        """(D+1, D+1) homogeneous matrix index -> LPS mm."""
        ndim = len(self.origin)
        m = np.eye(ndim + 1)
        m[:ndim, :ndim] = self.direction @ np.diag(self.spacing)
        m[:ndim, ndim] = self.origin
        return m


def itk_geometry_from_affine(affine: np.ndarray, ndim: int) -> ItkGeometry:
    """ITK geometry of an array with NIfTI affine ``affine`` (RAS). For 2D arrays (stored as
    (X, Y, 1)) the in-plane 2x2 block is used: enough for a self-consistent 2D registration."""
    affine = np.asarray(affine, dtype=np.float64)
    lin = affine[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"affine has a zero-length axis: {affine.tolist()}")
    direction = _RAS_TO_LPS @ (lin / spacing)
    origin = _RAS_TO_LPS @ affine[:3, 3]
    if ndim == 2:
        d2 = direction[:2, :2]
        # an in-plane block of an oblique plane is not orthonormal: re-orthonormalise it (polar part)
        uu, _, vt = np.linalg.svd(d2)
        return ItkGeometry(origin[:2].copy(), spacing[:2].copy(), uu @ vt)
    return ItkGeometry(origin, spacing, direction)


def index_grid(shape) -> np.ndarray:
    """(D, *shape) float64 voxel indices."""
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a homogeneous (D+1, D+1) matrix to (D, *S) points."""
    ndim = points.shape[0]
    flat = points.reshape(ndim, -1)
    out = matrix[:ndim, :ndim] @ flat + matrix[:ndim, ndim:ndim + 1]
    return out.reshape(points.shape)


def physical_to_voxel_displacement(phys_disp: np.ndarray, fixed_index_to_phys: np.ndarray,
                                   moving_index_to_phys: np.ndarray) -> np.ndarray:
    """Voxel displacement (D, *S) from a physical displacement (D, *S) sampled on the fixed grid.

    ``phys_disp[:, x]`` is ``p_m - p_f(x)`` in the world frame of the two homogeneous matrices
    (index -> world). Returns ``u(x) = M_m^-1 (p_f(x) + phys_disp(x)) - x`` in float64.
    """
    phys_disp = np.asarray(phys_disp, dtype=np.float64)
    x = index_grid(phys_disp.shape[1:])
    p_m = _apply(fixed_index_to_phys, x) + phys_disp
    return _apply(np.linalg.inv(moving_index_to_phys), p_m) - x


def nifti_world_matrix(affine: np.ndarray, ndim: int) -> np.ndarray:
    """Homogeneous index -> RAS matrix of a NIfTI affine restricted to the first ``ndim`` axes
    (2D images are (X, Y, 1) on disk: their third index is always 0)."""
    affine = np.asarray(affine, dtype=np.float64)
    if ndim == 3:
        return affine
    m = np.eye(3)
    m[:2, :2] = affine[:2, :2]
    m[:2, 2] = affine[:2, 3]
    return m
