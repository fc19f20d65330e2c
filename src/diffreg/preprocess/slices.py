"""2D slice extraction from 3D volumes (e.g. LDM-Morph's ACDC mid-slice)."""
from __future__ import annotations

import numpy as np

from ..errors import InputError


def parse_slice(spec: str) -> tuple[int, str | int]:
    """'2' or '2:mid' -> (2, 'mid'); '2:17' -> (2, 17); '2:label' -> slice with most foreground."""
    axis, _, where = spec.partition(":")
    try:
        ax = int(axis)
    except ValueError:
        raise InputError(f"--extract-slice {spec}: axis must be 0, 1 or 2") from None
    where = where or "mid"
    if where not in ("mid", "label"):
        try:
            return ax, int(where)
        except ValueError:
            raise InputError(f"--extract-slice {spec}: position must be mid, label or an index") from None
    return ax, where


def slice_index(shape: tuple[int, ...], axis: int, where: str | int, labels: np.ndarray | None = None) -> int:
    if axis not in (0, 1, 2) or len(shape) != 3:
        raise InputError(f"slice extraction needs a 3D image and axis 0-2 (got shape {shape}, axis {axis})")
    n = shape[axis]
    if where == "mid":
        return n // 2
    if where == "label":
        if labels is None:
            raise InputError("--extract-slice AXIS:label needs --labels")
        counts = (labels > 0).sum(axis=tuple(a for a in range(3) if a != axis))
        return int(np.argmax(counts)) if counts.any() else n // 2
    if not 0 <= int(where) < n:
        raise InputError(f"slice index {where} outside 0..{n - 1}")
    return int(where)


def extract(arr: np.ndarray, affine: np.ndarray, axis: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A 2D slice and the affine of its grid (third column: the slice normal)."""
    keep = [d for d in range(3) if d != axis]
    out = np.ascontiguousarray(np.take(arr, index, axis=axis))
    aff = np.eye(4)
    aff[:3, :3] = affine[:3, keep + [axis]]
    aff[:3, 3] = affine[:3, 3] + affine[:3, axis] * index
    return out, aff
