"""Report figures as PNG bytes (matplotlib, Agg): the qualitative panel and the Dice box plot.

Slices: 2D images are shown whole; 3D volumes by their mid axial slice (RAS array order, so the
last axis is inferior -> superior). The first in-plane axis runs left -> right, the second
posterior -> anterior (upwards).
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from diffreg.report.tables import INITIAL

if TYPE_CHECKING:   # registration_outputs imports torch: the registry of figures must stay cheap to import
    from diffreg.registration_outputs import PairData  # deferred: pulls in torch


@functools.cache
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


class _Pyplot:
    """matplotlib.pyplot (Agg), imported on first use: the launch check imports the figure registry
    only to check the papers' figure settings, and pyplot's import cost it 0.6 s."""

    def __getattr__(self, name: str):
        return getattr(_pyplot(), name)


plt = _Pyplot()

PANEL_IN = 2.1   # inches per panel
DPI = 110


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def mid_slice(arr: np.ndarray) -> np.ndarray:
    """(X, Y) of a 2D image, or the mid axial (constant last index) slice of a 3D volume."""
    return arr if arr.ndim == 2 else arr[..., arr.shape[-1] // 2]


def field_slice(disp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-plane components (u_x, u_y) of a (D, *S) field on the slice of :func:`mid_slice`."""
    return mid_slice(disp[0]), mid_slice(disp[1])


def _show(ax, sl: np.ndarray, **kw) -> None:
    # transpose: first array axis horizontal, second vertical (origin lower = anterior up)
    ax.imshow(sl.T, origin="lower", interpolation="nearest", **kw)


def draw_grid(ax, ux: np.ndarray, uy: np.ndarray, lines: int = 12) -> None:
    """Grid lines of x + u(x): each line is a row or column of the regular grid, moved by u."""
    nx, ny = ux.shape
    step = max(1, round(min(nx, ny) / lines))
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    px, py = ii + ux, jj + uy
    kw = dict(color="#1f4e9c", lw=0.7)
    for i in range(0, nx, step):
        ax.plot(px[i, :], py[i, :], **kw)
    for j in range(0, ny, step):
        ax.plot(px[:, j], py[:, j], **kw)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_aspect("equal")
    ax.set_facecolor("white")


@dataclass
class QualitativeRow:
    method: str
    data: PairData
    dice: float | None = None   # mean Dice of this pair, shown beside the method name


def qualitative_figure(rows: list[QualitativeRow], title: str) -> bytes:
    """Rows = methods; columns = fixed, moving, warped, deformation grid, |warped - fixed|."""
    cols = ["fixed", "moving", "warped", "deformation grid (x + u)", "|warped − fixed|"]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(PANEL_IN * len(cols) + 0.6, PANEL_IN * len(rows) + 0.5),
                             squeeze=False, layout="constrained")
    warped = [mid_slice(r.data.warped()) for r in rows]
    fixed = [mid_slice(r.data.fixed) for r in rows]
    moving = [mid_slice(r.data.moving) for r in rows]
    vmax = max(max(float(f.max()), float(m.max())) for f, m in zip(fixed, moving)) or 1.0
    diffs = [np.abs(w - f) for w, f in zip(warped, fixed)]
    dmax = max(float(d.max()) for d in diffs) or 1.0
    for r, row in enumerate(rows):
        ax = axes[r]
        gray = dict(cmap="gray", vmin=0.0, vmax=vmax)
        _show(ax[0], fixed[r], **gray)
        _show(ax[1], moving[r], **gray)
        _show(ax[2], warped[r], **gray)
        draw_grid(ax[3], *field_slice(row.data.disp))
        im = ax[4].imshow(diffs[r].T, origin="lower", interpolation="nearest", cmap="inferno", vmin=0.0, vmax=dmax)
        label = row.method if row.dice is None or np.isnan(row.dice) else f"{row.method}\nDice {row.dice:.3f}"
        ax[0].set_ylabel(label, fontsize=10)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
        if r == 0:
            for a, c in zip(ax, cols):
                a.set_title(c, fontsize=10)
    fig.colorbar(im, ax=axes[:, -1].tolist(), shrink=min(1.0, 0.9 / len(rows) + 0.3), label="|warped − fixed|")
    fig.suptitle(title, fontsize=11)
    return png_bytes(fig)


def dice_boxplot(metrics: pd.DataFrame, title: str) -> bytes | None:
    """Box plot of the per-pair mean Dice of each method (and 'initial', before registration),
    with the pairs drawn as points. None when the metrics hold no mean Dice."""
    d = metrics[(metrics["label"] == "mean") & metrics["metric"].isin(["dice", "dice_before"])]
    if d.empty:
        return None
    before = d[d["metric"] == "dice_before"].drop_duplicates(subset=["dataset", "pair"]).assign(method=INITIAL)
    d = pd.concat([before, d[d["metric"] == "dice"]], ignore_index=True)
    methods = list(pd.unique(d["method"]))
    data = [d.loc[d["method"] == m, "value"].dropna().to_numpy() for m in methods]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.0 + 0.9 * len(methods)), 3.4))
    ax.boxplot(data, showfliers=False, widths=0.55)
    ax.set_xticks(range(1, len(methods) + 1), methods)
    rng = np.random.default_rng(0)  # fixed jitter: the same figure for the same numbers
    for i, v in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(v)), v, s=12, color="#1f4e9c", alpha=0.7, zorder=3)
    ax.set_ylabel("mean Dice over labels")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    return png_bytes(fig)
