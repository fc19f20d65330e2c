"""Before/after QC pictures: mid slices of the reference, the input, the output and a
checkerboard of output and reference (shows misalignment whatever the two contrasts)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_path


def _mid_slices(arr: np.ndarray) -> list[np.ndarray]:
    if arr.ndim == 2:
        return [arr.T]
    x, y, z = (n // 2 for n in arr.shape)
    return [arr[:, :, z].T, arr[:, y, :].T, arr[x, :, :].T]  # axial, coronal, sagittal


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    idx = np.indices(a.shape)
    size = max(1, max(a.shape) // tiles)
    mask = (sum(i // size for i in idx) % 2).astype(bool)
    return np.where(mask, a, b)


def _norm(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)


def save_qc(path: str | Path, before: np.ndarray, after: np.ndarray, reference: np.ndarray | None = None,
            title: str = "", labels: np.ndarray | None = None) -> Path:
    """Write a PNG: rows = slices (1 in 2D, 3 in 3D), columns = before | after | reference |
    checkerboard(after, reference); label contours on `after` when given."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [("before", _norm(before)), ("after", _norm(after))]
    if reference is not None and reference.shape == after.shape:
        cols += [("reference", _norm(reference)), ("after | reference", checkerboard(_norm(after), _norm(reference)))]
    rows = [_mid_slices(c[1]) for c in cols]
    lab_sl = _mid_slices(labels) if labels is not None and labels.shape == after.shape else None
    nr = min(len(r) for r in rows)  # a 2D output of a 3D input: its axial row only
    fig, axes = plt.subplots(nr, len(cols), figsize=(2.6 * len(cols), 2.6 * nr), squeeze=False)
    for c, (name, _) in enumerate(cols):
        for r in range(nr):
            ax = axes[r, c]
            ax.imshow(rows[c][r], cmap="gray", origin="lower", vmin=0, vmax=1)
            if lab_sl is not None and name == "after" and np.unique(lab_sl[r]).size > 1:
                ax.contour(lab_sl[r], levels=np.unique(lab_sl[r])[1:] - 0.5, linewidths=0.5, cmap="autumn")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return path
