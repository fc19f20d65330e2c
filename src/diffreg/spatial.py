"""Spatial transforms on displacement fields: the one warp of the code base and what builds on it.

Conventions (docs/conventions.md):
- images are (B, C, *S), displacements (B, D, *S) with D = len(S), in voxel units, channels in
  array-axis order;
- a displacement ``u`` is a backward map: ``warp(m, u)(x) = m(x + u(x))``;
- sampling uses ``grid_sample(..., align_corners=True)``: voxel ``p`` of an axis of length ``N``
  sits at normalised ``2 p / (N - 1) - 1``, so voxel centres are exact sample points;
- one padding rule: ``"border"`` (a sample outside the grid takes the nearest edge value), for
  images, labels and fields alike. MONAI's ``Warp`` uses the same default.

2D and 3D throughout. Torch functions accept any float dtype and are differentiable.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "identity_grid", "warp", "warp_numpy", "compose", "integrate_velocity", "invert",
    "resize_field", "jacobian_determinant", "jacobian_matrix",
]

_MODES = {"linear": "bilinear", "nearest": "nearest"}
_PADDINGS = ("border", "zeros", "reflection")


def identity_grid(shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
    """Voxel coordinates of a grid of ``shape``: (1, D, *shape), channel d holds the index along axis d."""
    axes = [torch.arange(n, device=device, dtype=dtype) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0).unsqueeze(0)


def _check_field(disp: torch.Tensor) -> int:
    ndim = disp.ndim - 2
    if ndim not in (2, 3) or disp.shape[1] != ndim:
        raise ValueError(f"displacement must be (B, D, *S) with D = len(S) in (2, 3), got {tuple(disp.shape)}")
    return ndim


_BASE_CACHE: dict = {}


def _normalised_base(shape, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(identity grid in normalised units, per-axis scale 2/(N-1)), cached per shape/device/dtype."""
    key = (tuple(shape), str(device), dtype)
    hit = _BASE_CACHE.get(key)
    if hit is None:
        ndim = len(shape)
        # align_corners=True: voxel p -> 2p/(N-1) - 1; a singleton axis maps to -1 as in MONAI
        scale = torch.tensor([2.0 / max(n - 1, 1) for n in shape], device=device, dtype=dtype).view(1, ndim, *([1] * ndim))
        base = identity_grid(shape, device=device, dtype=dtype) * scale - 1.0
        if len(_BASE_CACHE) > 32:
            _BASE_CACHE.clear()
        hit = _BASE_CACHE[key] = (base, scale)
    return hit


def _sampling_grid(disp: torch.Tensor) -> torch.Tensor:
    """(B, D, *S) voxel displacement -> grid_sample grid (B, *S, D), last axis in (x, y, z) = reversed array order."""
    ndim = disp.ndim - 2
    base, scale = _normalised_base(disp.shape[2:], disp.device, disp.dtype)
    loc = base + disp * scale
    return loc.permute(0, *range(2, ndim + 2), 1).flip(-1)


def warp(image: torch.Tensor, disp: torch.Tensor, mode: str = "linear", padding: str = "border") -> torch.Tensor:
    """Backward warp: ``out(x) = image(x + disp(x))``.

    image (B, C, *S) or (1, C, *S) (broadcast over the field's batch); disp (B, D, *S) in voxels.
    ``mode="linear"`` for intensities and fields, ``"nearest"`` for labels; integer label tensors come
    back in their own dtype. ``padding="border"`` is the project's one rule (see module docstring).
    """
    ndim = _check_field(disp)
    if image.ndim != ndim + 2 or tuple(image.shape[2:]) != tuple(disp.shape[2:]):
        raise ValueError(f"image {tuple(image.shape)} and displacement {tuple(disp.shape)} disagree on spatial shape")
    if mode not in _MODES:
        raise ValueError(f"warp mode must be one of {sorted(_MODES)}, got {mode!r}")
    if padding not in _PADDINGS:
        raise ValueError(f"warp padding must be one of {_PADDINGS}, got {padding!r}")
    if image.shape[0] != disp.shape[0]:
        if image.shape[0] != 1:
            raise ValueError(f"batch sizes differ: image {image.shape[0]}, displacement {disp.shape[0]}")
        image = image.expand(disp.shape[0], *image.shape[1:])
    src_dtype = image.dtype
    if not src_dtype.is_floating_point and mode != "nearest":
        raise ValueError("integer (label) images must be warped with mode='nearest'")
    # integer labels go through float (exact up to 2^24 in float32)
    work = image if image.is_floating_point() else image.to(disp.dtype)
    grid = _sampling_grid(disp).to(work.dtype)
    out = F.grid_sample(work, grid, mode=_MODES[mode], padding_mode=padding, align_corners=True)
    if not src_dtype.is_floating_point:
        out = out.round().to(src_dtype)
    return out


def warp_numpy(arr: np.ndarray, disp: np.ndarray, mode: str = "linear", padding: str = "border") -> np.ndarray:
    """numpy wrapper of :func:`warp` for baselines and evaluation.

    arr is (*S) or (C, *S); disp is (D, *S) in voxels. Returns an array of arr's shape and dtype
    (labels keep their integer dtype with ``mode="nearest"``). Computes in float64.
    """
    disp = np.asarray(disp)
    ndim = disp.shape[0]
    arr = np.asarray(arr)
    squeeze = arr.ndim == ndim
    if arr.ndim not in (ndim, ndim + 1):
        raise ValueError(f"array {arr.shape} does not match displacement {disp.shape}")
    is_float = np.issubdtype(arr.dtype, np.floating)
    if not is_float and mode != "nearest":
        raise ValueError("integer (label) arrays must be warped with mode='nearest'")
    # any numpy dtype (uint16 labels, bool masks) goes through float64: exact for integers < 2^53
    img = torch.from_numpy(np.ascontiguousarray(arr[None] if squeeze else arr, dtype=np.float64))[None]
    field = torch.from_numpy(np.ascontiguousarray(disp, dtype=np.float64))[None]
    out = warp(img, field, mode=mode, padding=padding)[0]
    out = (out[0] if squeeze else out).numpy()
    return out.astype(arr.dtype, copy=False) if is_float else np.rint(out).astype(arr.dtype)


def compose(u: torch.Tensor, v: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Displacement of "u after v" in the backward-map sense: ``x -> x + v(x) + u(x + v(x))``.

    So ``warp(warp(m, u), v) == warp(m, compose(u, v))`` (up to interpolation): v is looked up first,
    then u is sampled where v points. Equivalently, with maps phi_u(x) = x + u(x),
    ``compose(u, v)`` is the displacement of ``phi_u o phi_v``.
    """
    return v + warp(u, v, mode="linear", padding=padding)


def integrate_velocity(v: torch.Tensor, steps: int = 7) -> torch.Tensor:
    """Scaling and squaring of a stationary velocity field (voxels): exp(v) as a displacement.

    u = v / 2^steps, then ``steps`` times u <- compose(u, u). Same scheme as MONAI's DVF2DDF, whose
    default padding is zeros; ours keeps the project's border padding (so they differ only where
    the field points outside the grid).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    u = v / (2 ** steps)
    for _ in range(steps):
        u = compose(u, u)
    return u


def invert(u: torch.Tensor, iterations: int = 50, tol: float = 1e-5) -> torch.Tensor:
    """Inverse displacement w with ``compose(u, w) ~ 0`` (phi_u o phi_w = id) by fixed-point iteration.

    Iterates ``w <- -u(x + w(x))``; converges when u is a contraction-like small deformation
    (|grad u| < 1). Stops early once the update's max norm falls below ``tol`` voxels.
    """
    _check_field(u)
    w = -u
    for _ in range(iterations):
        w_next = -warp(u, w)
        delta = (w_next - w).abs().max()
        w = w_next
        if delta < tol:
            break
    return w


def resize_field(u: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Resample a displacement to ``shape`` and rescale its values per axis.

    Uses the align_corners=True geometry of :func:`warp`: grid corners map to grid corners, so a
    displacement along axis d is multiplied by (new_d - 1) / (old_d - 1).
    """
    ndim = _check_field(u)
    shape = tuple(int(s) for s in shape)
    if len(shape) != ndim:
        raise ValueError(f"target shape {shape} has {len(shape)} axes, field has {ndim}")
    old = u.shape[2:]
    mode = "bilinear" if ndim == 2 else "trilinear"
    out = F.interpolate(u, size=shape, mode=mode, align_corners=True)
    scale = torch.tensor([(n - 1) / max(o - 1, 1) for n, o in zip(shape, old)], dtype=u.dtype, device=u.device)
    return out * scale.view(1, ndim, *([1] * ndim))


def jacobian_matrix(u):
    """Jacobian of x + u(x) by central differences (one-sided first order at borders, as np.gradient).

    u: torch (B, D, *S) or numpy (D, *S). Returns (B, *S, D, D) or (*S, D, D) with
    ``J[..., i, j] = d(x_i + u_i) / d x_j``.
    """
    if isinstance(u, np.ndarray):
        return jacobian_matrix(torch.from_numpy(np.asarray(u, dtype=np.float64))[None])[0].numpy()
    ndim = _check_field(u)
    rows = []
    for i in range(ndim):
        grads = torch.gradient(u[:, i], dim=tuple(range(1, ndim + 1)), edge_order=1)
        rows.append(torch.stack([g + (1.0 if j == i else 0.0) for j, g in enumerate(grads)], dim=-1))
    return torch.stack(rows, dim=-2)


def _det(J):
    if J.shape[-1] == 2:
        return J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
    return (J[..., 0, 0] * (J[..., 1, 1] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 1])
            - J[..., 0, 1] * (J[..., 1, 0] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 0])
            + J[..., 0, 2] * (J[..., 1, 0] * J[..., 2, 1] - J[..., 1, 1] * J[..., 2, 0]))


def jacobian_determinant(u):
    """det of the Jacobian of x + u(x), central differences (see :func:`jacobian_matrix`).

    torch (B, D, *S) -> (B, *S); numpy (D, *S) -> (*S) float64.
    """
    return _det(jacobian_matrix(u))
