"""Evaluation metrics: numpy arrays in, Python floats (or dicts of floats) out.

Displacements are (D, *S) numpy arrays in voxel units (backward maps, docs/conventions.md). Jacobians are of
x + u(x) and come from :mod:`diffreg.spatial` (central differences) unless stated otherwise.

Absent labels (one rule everywhere, as Learn2Reg): Dice of a label missing from *both* maps is NaN
and summaries use nanmean; a label present in only one map scores 0. HD95 is NaN when the label is
missing from either map (a distance to nothing is undefined); summaries use nanmean.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage

from diffreg import spatial

__all__ = [
    "dice_per_label", "mean_dice", "hd95_per_label", "folding_percent", "sdlogj", "summary_jacobian",
    "forward_jacobian_determinant", "njd", "jsd", "strict_jacobian_determinants", "nondiffeomorphic",
    "psnr", "nmse", "ssim", "landmark_mse",
]

LOGJ_CLIP = 1e-9  # det J is clipped to [LOGJ_CLIP, inf) before the log in SDlogJ


def _labels_of(a: np.ndarray, b: np.ndarray) -> list[int]:
    return sorted(int(v) for v in np.union1d(np.unique(a), np.unique(b)) if v != 0)


def dice_per_label(a_labels: np.ndarray, b_labels: np.ndarray, labels: Iterable[int] | None = None) -> dict[int, float]:
    """Dice 2|A∩B| / (|A|+|B|) per label; NaN when the label is in neither map (see module doc).

    ``labels`` defaults to every nonzero label present in either map.
    """
    a = np.asarray(a_labels)
    b = np.asarray(b_labels)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    labels = _labels_of(a, b) if labels is None else list(labels)
    out: dict[int, float] = {}
    for lab in labels:
        ma, mb = a == lab, b == lab
        denom = int(ma.sum()) + int(mb.sum())
        out[int(lab)] = float("nan") if denom == 0 else 2.0 * int(np.logical_and(ma, mb).sum()) / denom
    return out


def mean_dice(a_labels: np.ndarray, b_labels: np.ndarray, labels: Iterable[int] | None = None) -> float:
    """nanmean of :func:`dice_per_label` (NaN if every label is absent from both maps)."""
    vals = np.array(list(dice_per_label(a_labels, b_labels, labels).values()), dtype=float)
    if vals.size == 0 or np.all(np.isnan(vals)):
        return float("nan")
    return float(np.nanmean(vals))


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask with a face neighbour outside it (voxels on the image edge count)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _directed_distances(src: np.ndarray, dst: np.ndarray, spacing) -> np.ndarray:
    """Distance from each surface voxel of src to the nearest surface voxel of dst."""
    dist = ndimage.distance_transform_edt(~_surface(dst), sampling=spacing)
    return dist[_surface(src)]


def hd95_per_label(a_labels: np.ndarray, b_labels: np.ndarray, labels: Iterable[int] | None = None,
                   spacing=None) -> dict[int, float]:
    """95th-percentile symmetric Hausdorff distance per label between label surfaces.

    HD95 = max(p95(d(A->B)), p95(d(B->A))) over surface voxels (as MONAI's
    HausdorffDistanceMetric(percentile=95)); percentiles by linear interpolation (numpy default).
    Units: voxels when ``spacing`` is None, else the units of ``spacing`` (mm per axis).
    NaN when the label is missing from either map.
    """
    a = np.asarray(a_labels)
    b = np.asarray(b_labels)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    spacing = None if spacing is None else tuple(float(v) for v in spacing)
    labels = _labels_of(a, b) if labels is None else list(labels)
    out: dict[int, float] = {}
    for lab in labels:
        ma, mb = a == lab, b == lab
        if not ma.any() or not mb.any():
            out[int(lab)] = float("nan")
            continue
        dab = _directed_distances(ma, mb, spacing)
        dba = _directed_distances(mb, ma, spacing)
        out[int(lab)] = float(max(np.percentile(dab, 95), np.percentile(dba, 95)))
    return out


def _field(disp) -> np.ndarray:
    d = np.asarray(disp, dtype=np.float64)
    if d.ndim not in (3, 4) or d.shape[0] != d.ndim - 1:
        raise ValueError(f"displacement must be (D, *S) with D = len(S) in (2, 3), got {d.shape}")
    return d


def _masked(values: np.ndarray, mask) -> np.ndarray:
    return values if mask is None else values[np.asarray(mask, dtype=bool)]


def folding_percent(disp, mask=None) -> float:
    """% of voxels (inside ``mask`` if given) where det J <= 0, central differences."""
    det = _masked(spatial.jacobian_determinant(_field(disp)), mask)
    return float(100.0 * np.mean(det <= 0))


def sdlogj(disp, mask=None) -> float:
    """Standard deviation of log(det J), det clipped below at LOGJ_CLIP (no +3 shift, unlike Learn2Reg)."""
    det = _masked(spatial.jacobian_determinant(_field(disp)), mask)
    return float(np.std(np.log(np.clip(det, LOGJ_CLIP, None))))


def summary_jacobian(disp, mask=None) -> dict[str, float]:
    """Every Jacobian statistic of one field.

    Central differences: folding_percent, sdlogj, det_min/max/mean. DiffuseReg's forward-difference
    njd and jsd (whole grid minus the last slice per axis; ``mask`` not applied). Liu et al.'s
    strict_percent and ndv_percent (see :func:`nondiffeomorphic`).
    """
    d = _field(disp)
    det = _masked(spatial.jacobian_determinant(d), mask)
    fwd = forward_jacobian_determinant(d)
    strict = nondiffeomorphic(d, mask)
    return {
        "folding_percent": float(100.0 * np.mean(det <= 0)),
        "sdlogj": float(np.std(np.log(np.clip(det, LOGJ_CLIP, None)))),
        "det_min": float(det.min()),
        "det_max": float(det.max()),
        "det_mean": float(det.mean()),
        "njd": float(100.0 * np.mean(fwd <= 0)),
        "jsd": float(np.std(fwd)),
        "strict_percent": strict["strict_percent"],
        "ndv_percent": strict["ndv_percent"],
    }


# ------------------------------------------------------------------ DiffuseReg's forward-difference statistics
def _det_of_columns(cols: list[np.ndarray]) -> np.ndarray:
    """det of the matrices whose k-th column is cols[k] (each (D, *S)), by the explicit 2x2 / 3x3
    formula: no (*S, D, D) stack, so large volumes stay within memory."""
    if len(cols) == 2:
        (a, c), (b, d) = cols
        return a * d - b * c
    (a, d, g), (b, e, h), (c, f, i) = cols  # rows of the matrix are (a b c), (d e f), (g h i)
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def forward_jacobian_determinant(disp) -> np.ndarray:
    """det J of x + u(x) with forward differences u(x + e_d) - u(x), on the voxels where all of them
    exist (every axis one shorter)."""
    d = _field(disp)
    ndim = d.shape[0]
    crop = (slice(None),) + tuple(slice(0, n - 1) for n in d.shape[1:])
    cols = []
    for j in range(ndim):
        g = np.diff(d, axis=1 + j)[crop]
        g[j] += 1.0
        cols.append(g)
    return _det_of_columns(cols)


def njd(disp) -> float:
    """DiffuseReg's NJD: % of voxels with det J <= 0, forward differences."""
    return float(100.0 * np.mean(forward_jacobian_determinant(disp) <= 0))


def jsd(disp) -> float:
    """DiffuseReg's JSD: standard deviation of det J, forward differences."""
    return float(np.std(forward_jacobian_determinant(disp)))


# ------------------------------------------------------------------ digital diffeomorphism (Liu et al. 2024)
def _strict_variants(ndim: int) -> dict[str, list[tuple[int, ...]]]:
    """Finite-difference variants as the edge vectors (offsets from x) of a simplex at x.

    2D: the 4 one-sided combinations ('++', '+-', '-+', '--'), i.e. the triangles of the two
    triangulations of each pixel square. 3D: the 8 one-sided combinations (corner tetrahedra) and
    the 2 central tetrahedra of the two 5-tetrahedra splits of a cube: 'j1*' with edges
    -(e0+e1), -(e0+e2), -(e1+e2) and 'j2*' with edges e0+e1, e1+e2, e0+e2 (ordered so the identity
    has positive determinant 2).
    """
    out: dict[str, list[tuple[int, ...]]] = {}
    for signs in np.ndindex(*([2] * ndim)):
        key = "".join("+" if s == 0 else "-" for s in signs)
        edges = []
        for d, s in enumerate(signs):
            e = [0] * ndim
            e[d] = 1 if s == 0 else -1
            edges.append(tuple(e))
        out[key] = edges
    if ndim == 3:
        out["j1*"] = [(-1, -1, 0), (-1, 0, -1), (0, -1, -1)]
        out["j2*"] = [(1, 1, 0), (0, 1, 1), (1, 0, 1)]
    return out


def strict_jacobian_determinants(disp) -> dict[str, np.ndarray]:
    """Determinant of every simplex variant at every voxel (4 in 2D, 10 in 3D), each (*S).

    det[edges] = det([phi(x + e_k) - phi(x)]_k) / det([e_k]_k): normalised so the identity gives 1
    for every variant. The displacement is edge-replicated one voxel beyond the grid (as Liu et al.),
    so simplices that leave the grid see a locally translated map.
    """
    d = _field(disp)
    ndim = d.shape[0]
    shape = d.shape[1:]
    pad = np.pad(d, [(0, 0)] + [(1, 1)] * ndim, mode="edge")
    grid = np.indices(shape, dtype=np.float64)

    def phi_at(offset):
        sl = (slice(None),) + tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, shape))
        return pad[sl] + grid + np.asarray(offset, dtype=np.float64).reshape((ndim,) + (1,) * ndim)

    phi0 = phi_at((0,) * ndim)
    dets = {}
    for key, edges in _strict_variants(ndim).items():
        cols = [phi_at(e) - phi0 for e in edges]
        dets[key] = _det_of_columns(cols) / np.linalg.det(np.array(edges, dtype=np.float64).T)
    return dets


def nondiffeomorphic(disp, mask=None) -> dict[str, float]:
    """Digital-diffeomorphism statistics (Liu et al., IJCV 2024).

    - ``strict_percent``: % of voxels where any variant has det <= 0 (the voxel is not digitally
      diffeomorphic); central differences alone miss checkerboard folds that this catches.
    - ``ndv``: non-diffeomorphic volume (area in 2D) in voxels: each variant contributes the volume
      of its negatively oriented simplex, |det| / D!, halved because each cell is split two ways.
    - ``ndv_percent``: ndv as a % of the number of voxels considered.
    """
    d = _field(disp)
    ndim = d.shape[0]
    dets = strict_jacobian_determinants(d)
    m = np.ones(d.shape[1:], bool) if mask is None else np.asarray(mask, dtype=bool)
    # raw simplex volume = normalised det * det(edges) / D!; det(edges) is 1 (corner) or 2 (central)
    edge_det = {k: abs(np.linalg.det(np.array(e, dtype=np.float64).T)) for k, e in _strict_variants(ndim).items()}
    fact = 2.0 if ndim == 2 else 6.0
    vol = sum(0.5 * np.minimum(v, 0.0) * -edge_det[k] / fact for k, v in dets.items())
    bad = np.zeros(d.shape[1:], bool)
    for v in dets.values():
        bad |= v <= 0
    n = int(m.sum())
    ndv = float(vol[m].sum())
    return {
        "strict_percent": float(100.0 * bad[m].mean()) if n else float("nan"),
        "ndv": ndv,
        "ndv_percent": float(100.0 * ndv / n) if n else float("nan"),
    }


# ------------------------------------------------------------------ image similarity metrics
def psnr(image, reference, data_range: float = 1.0) -> float:
    """10 log10(data_range^2 / MSE) in dB (inf for identical images)."""
    a = np.asarray(image, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range ** 2 / mse))


def nmse(image, reference) -> float:
    """||image - reference||^2 / ||reference||^2."""
    a = np.asarray(image, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    return float(np.sum((a - b) ** 2) / np.sum(b ** 2))


def ssim(image, reference, win_size: int | None = None, sigma: float = 1.5, data_range: float = 1.0,
         channel_axis: int | None = None) -> float:
    """Mean SSIM with a Gaussian window over the valid region; image and reference are (*S), or
    colour images with their channels on `channel_axis` (the mean of the per-channel SSIMs, as
    scikit-image's `channel_axis`).

    win_size defaults to 11 in 2D and 9 in 3D (DiffuseReg's setting); same code as the SSIM loss.
    """
    import torch

    from diffreg.losses.ssim import ssim_map  # deferred: pulls in monai

    if channel_axis is not None:
        a, b = (np.moveaxis(np.asarray(x), channel_axis, 0) for x in (image, reference))
        return float(np.mean([ssim(x, y, win_size, sigma, data_range) for x, y in zip(a, b)]))
    a = torch.from_numpy(np.asarray(image, dtype=np.float64))[None, None]
    b = torch.from_numpy(np.asarray(reference, dtype=np.float64))[None, None]
    if win_size is None:
        win_size = 11 if a.ndim == 4 else 9
    return float(ssim_map(a, b, win_size=win_size, sigma=sigma, data_range=data_range).mean())


# ------------------------------------------------------------------ landmarks
def landmark_mse(disp, fixed_points, moving_points) -> float:
    """Mean over landmarks of the squared distance (voxels^2) between where the registration sends
    a fixed-image landmark p, p + u(p) (u linearly interpolated, border values outside), and the
    same landmark q of the moving image. With the backward map warped(x) = moving(x + u(x)), this
    is zero exactly when the warped moving image has its landmark at p. Points are (N, D) voxel
    coordinates in array-axis order."""
    d = _field(disp)
    p = np.asarray(fixed_points, dtype=np.float64)
    q = np.asarray(moving_points, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 2 or p.shape[1] != d.shape[0]:
        raise ValueError(f"landmarks must be two (N, {d.shape[0]}) arrays, got {p.shape} and {q.shape}")
    u = np.stack([ndimage.map_coordinates(c, p.T, order=1, mode="nearest") for c in d], axis=1)
    return float(np.mean(np.sum((p + u - q) ** 2, axis=1)))
