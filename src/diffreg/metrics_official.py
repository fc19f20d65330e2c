"""Metrics as a paper's official code computes them, where that differs from ours; each is a
metric of its own name, computed only where an artifact names it (`metrics:` of the experiment
YAML), so that our metric stays the default and both appear side by side.

DiffuseMorph (boahK/DiffuseMorph `main_3D.py`, test branch): the moving label map is resampled
with a sampling grid normalised for `align_corners=True` (voxel i + u -> 2 (i + u) / (n - 1) - 1)
but read by `F.grid_sample` with its default `align_corners=False`, nearest neighbour, zeros
outside. Even with a zero field this samples voxel i at i n / (n - 1) - 1/2: a stretch about the
centre by n / (n - 1) and a shift of half a voxel, so the official Dice of the identity is not 1.
`dice_official` (per label, their mean, the unions) and `dice_structures_official` (the mean of
those, Table 2's Dice) are our Dice of labels warped this way.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .evaluation_config import OFFICIAL_LABEL_METRICS

# the metric names of the official computation
DIFFUSEMORPH_DICE = OFFICIAL_LABEL_METRICS


def warp_labels_diffusemorph(labels: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """`labels` (*S) warped by `disp` (D, *S, voxels, channel c along array axis c) as DiffuseMorph's
    official evaluation does (module docstring)."""
    shape = labels.shape
    ndim = len(shape)
    if disp.shape != (ndim, *shape):
        raise ValueError(f"labels {shape} do not match displacement {disp.shape}")
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    # align_corners=True normalisation of the deformed coordinates ...
    coords = [2.0 * (g + disp[c]) / (n - 1) - 1.0 for c, (g, n) in enumerate(zip(grids, shape))]
    # ... in grid_sample's order (x = last array axis)
    grid = torch.from_numpy(np.stack(coords[::-1], axis=-1))[None]
    img = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float64))[None, None]
    # ... sampled with the default align_corners=False, as the official call does
    out = F.grid_sample(img, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return np.rint(out[0, 0].numpy()).astype(labels.dtype)
