"""Evaluation metrics: numpy arrays in, Python floats (or dicts of floats) out.

Displacements are (D, *S) numpy arrays in voxel units (backward maps, design.md). Jacobians are of
x + u(x) and come from :mod:`diffreg.spatial` (central differences) unless stated otherwise.

Absent labels (one rule everywhere, as Learn2Reg): Dice of a label missing from *both* maps is NaN
and summaries use nanmean; a label present in only one map scores 0.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from diffreg import spatial

__all__ = ["dice_per_label", "mean_dice", "folding_percent", "sdlogj", "summary_jacobian"]

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
    """Jacobian statistics of one field in one pass (central differences unless named otherwise)."""
    d = _field(disp)
    det = _masked(spatial.jacobian_determinant(d), mask)
    return {
        "folding_percent": float(100.0 * np.mean(det <= 0)),
        "sdlogj": float(np.std(np.log(np.clip(det, LOGJ_CLIP, None)))),
        "det_min": float(det.min()),
        "det_max": float(det.max()),
        "det_mean": float(det.mean()),
    }
