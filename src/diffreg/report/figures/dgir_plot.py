"""Drawing DGIR Fig. 1 (heatmaps) and Fig. 2 (correspondence lines). Arrays are (x, y) in RAS
order: shown transposed with origin lower, so x runs right and y up."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import plt
from .files import save_png


def _show(ax, img, title: str) -> None:
    ax.imshow(np.asarray(img).T, cmap="gray", origin="lower")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def plot_heatmaps(a, b, p, maps: dict, path: Path, where: str) -> Path:
    """Top: moving (red dot: p) and fixed; bottom: one map per measure (white +: its best match)."""
    n = len(maps)
    fig, axes = plt.subplots(2, max(n, 2), figsize=(2.2 * max(n, 2), 4.6))
    for ax in axes[0]:
        ax.axis("off")
    _show(axes[0, 0], a, f"moving ({where})")
    axes[0, 0].plot(p[0], p[1], "r.", ms=9)
    _show(axes[0, 1], b, "fixed")
    for ax, (name, m) in zip(axes[1], maps.items()):
        m = np.asarray(m)
        ax.imshow(m.T, cmap="jet", origin="lower")
        q = divmod(int(np.argmax(m)), m.shape[1])
        ax.plot(q[0], q[1], "w+", ms=8)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    for ax in axes[1][n:]:
        ax.axis("off")
    fig.suptitle("Fig. 1: similarity of every fixed pixel to the red point (white +: best)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def plot_correspondences(a, b, kps, matches: dict, path: Path) -> Path:
    """Moving and fixed side by side, a line from each keypoint to its match, per variant."""
    a, b = np.asarray(a), np.asarray(b)
    w = a.shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4 * a.shape[1] / a.shape[0] + 0.8))
    colours = plt.cm.hsv(np.linspace(0, 1, len(kps), endpoint=False))
    for ax, (variant, title) in zip(axes, (("cosine", "(a) diffusion features, cosine"),
                                           ("lncc", "(b) diffusion features + LNCC"))):
        ax.imshow(np.concatenate([a, b], axis=0).T, cmap="gray", origin="lower")
        for c, kp, q in zip(colours, kps, matches[variant]):
            ax.plot([kp[0], q[0] + w], [kp[1], q[1]], "-", color=c, lw=1)
            ax.plot(kp[0], kp[1], "o", color=c, ms=3)
            ax.plot(q[0] + w, q[1], "o", color=c, ms=3)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("Fig. 2: for each moving keypoint (left), the most similar fixed pixel (right)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
