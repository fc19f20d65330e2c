"""The 2D images a computed figure is drawn from: a 2D image whole, or one slice of a volume."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from diffreg.errors import InputError
from diffreg.io import read_image


def parse_ints(value, n: int, sep: str, what: str) -> tuple[int, ...]:
    """'a<sep>b' or [a, b] -> (a, b): settings come from YAML (lists) or the old flags (strings)."""
    try:
        parts = value.split(sep) if isinstance(value, str) else list(value)
        out = tuple(int(v) for v in parts)
    except (TypeError, ValueError):
        out = ()
    if len(out) != n:
        raise InputError(f"{what} {value!r}: expected {n} integers")
    return out


def load_slice(path: Path, slice_spec=None) -> tuple[np.ndarray, str]:
    """(2D array, description): the image itself when 2D; for a volume the slice `slice_spec`
    (AXIS:INDEX or [AXIS, INDEX]), by default the middle of axis 2."""
    arr, _ = read_image(path)
    if arr.ndim == 2:
        return arr, "2d"
    if arr.ndim != 3:
        raise InputError(f"{path}: expected a 2D or 3D image, got shape {arr.shape}")
    axis, index = 2, arr.shape[2] // 2
    if slice_spec is not None:
        axis, index = parse_ints(slice_spec, 2, ":", "slice")
        if not (0 <= axis < 3 and 0 <= index < arr.shape[axis]):
            raise InputError(f"slice {slice_spec}: outside the image of shape {arr.shape}")
    return np.take(arr, index, axis=axis), f"axis{axis}:{index}"


def load_pair(moving: Path, fixed: Path, slice_spec=None) -> tuple[np.ndarray, np.ndarray, str]:
    mov, where = load_slice(moving, slice_spec)
    fix, _ = load_slice(fixed, slice_spec)
    if mov.shape != fix.shape:
        raise InputError(f"{fixed}: shape {fix.shape} differs from the moving image's {mov.shape}")
    return mov, fix, where
