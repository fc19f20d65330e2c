"""DiffuseMorph's views of a registration beyond the final field (its Figs. 6-8), as PNG bytes.

- :func:`trajectory_figure`: per method, the moving image warped by its field at each trajectory
  time (DiffuseMorph: eta * latent; VM: zeta * u; VM-diff: the scaling-and-squaring stages), with
  a "true frames" row where the task has reference frames (a cine's intermediate frames).
- :func:`generated_figure`: the registered image beside the synthetic one reverse diffusion made
  from the moving image (``generated.nii.gz`` of a registration run with ``generate: true``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .common import PANEL_IN, _show, mid_slice, plt, png_bytes


@dataclass
class TrajectoryRow:
    method: str
    moving: np.ndarray
    fixed: np.ndarray
    frames: dict[float, np.ndarray] = field(default_factory=dict)   # time -> image at that time


TIME_DIGITS = 6   # trajectory times equal to this many decimals share a column


def _time_text(t: float) -> str:
    return f"t = {t:.3g}"


def columns(rows: list[TrajectoryRow]) -> tuple[list[float], list[dict[float, np.ndarray]]]:
    """The figure's times and each row's frames by them: one column per time, so 5/6 written as
    k/6 by one method and by linspace by another is one column."""
    frames = [{round(float(t), TIME_DIGITS): img for t, img in r.frames.items()} for r in rows]
    return sorted({t for f in frames for t in f}), frames


def trajectory_figure(rows: list[TrajectoryRow], title: str) -> bytes:
    """Rows = methods (and the true frames); columns = moving, every time any row has, fixed. A
    time a row has no image for (VM-diff's stages are at 2^-v) stays blank."""
    times, frames = columns(rows)
    cols = ["moving"] + [_time_text(t) for t in times] + ["fixed"]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(PANEL_IN * len(cols) + 0.6, PANEL_IN * len(rows) + 0.5),
                             squeeze=False, layout="constrained")
    vmax = max(max(float(np.max(r.moving)), float(np.max(r.fixed))) for r in rows) or 1.0
    gray = dict(cmap="gray", vmin=0.0, vmax=vmax)
    for i, row in enumerate(rows):
        ax = axes[i]
        panels = [row.moving] + [frames[i].get(t) for t in times] + [row.fixed]
        for a, img in zip(ax, panels):
            if img is not None:
                _show(a, mid_slice(img), **gray)
            else:
                a.set_facecolor("#f3f3f3")
                a.text(0.5, 0.5, "no field\nat this time", ha="center", va="center", fontsize=8,
                       transform=a.transAxes, color="#777")
            a.set_xticks([])
            a.set_yticks([])
        ax[0].set_ylabel(row.method, fontsize=10)
        if i == 0:
            for a, c in zip(ax, cols):
                a.set_title(c, fontsize=10)
    fig.suptitle(title, fontsize=11)
    return png_bytes(fig)


def generated_figure(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], title: str) -> bytes:
    """Rows (method, moving, fixed, warped, generated); columns in that order."""
    cols = ["moving", "fixed", "warped (registration)", "generated (reverse diffusion)"]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(PANEL_IN * len(cols) + 0.6, PANEL_IN * len(rows) + 0.5),
                             squeeze=False, layout="constrained")
    vmax = max(max(float(np.max(a)) for a in r[1:3]) for r in rows) or 1.0
    for i, (method, *images) in enumerate(rows):
        for j, (a, img) in enumerate(zip(axes[i], images)):
            _show(a, mid_slice(img), cmap="gray", vmin=0.0, vmax=vmax)
            a.set_xticks([])
            a.set_yticks([])
            if i == 0:
                a.set_title(cols[j], fontsize=10)
        axes[i][0].set_ylabel(method, fontsize=10)
    fig.suptitle(title, fontsize=11)
    return png_bytes(fig)


__all__ = ["TrajectoryRow", "trajectory_figure", "generated_figure"]
