"""Data made in code that several method tests share."""
from __future__ import annotations

import numpy as np
import torch

from diffreg.training.training_set import TrainingSet


def seeded(shape, seed):
    """Uniform [0, 1) values from torch's CPU generator (what the fidelity benchmarks regenerate)."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def smooth_shift_pairs(n: int = 6, size: int = 48, shift: int = 2) -> TrainingSet:
    """Smooth random 2D images and copies shifted by `shift` voxels along axis 0: the fixed image
    is b(x) = a(x - shift), so a good backward field is about -shift on axis 0."""
    from scipy.ndimage import gaussian_filter, shift as nd_shift
    g = np.random.default_rng(0)
    mov, fix = [], []
    for _ in range(n):
        a = gaussian_filter(g.random((size, size)), 2)
        a = ((a - a.min()) / (a.max() - a.min())).astype(np.float32)
        mov.append(a)
        fix.append(nd_shift(a, (shift, 0), mode="nearest").astype(np.float32))
    return TrainingSet([f"s{i}" for i in range(n)], mov, fix)


def fit_known_shift(method, data: TrainingSet, margin: int) -> tuple[dict, float, float, float]:
    """Fit `method` on `data` (smooth_shift_pairs) and register its first pair: the training
    summary, the MSE to the fixed image before and after warping, and the mean axis-0
    displacement `margin` voxels inside the border (about -shift when the shift was learned)."""
    from diffreg import spatial
    summary = method.fit(data)
    a, b = torch.from_numpy(data.moving[0])[None, None], torch.from_numpy(data.fixed[0])[None, None]
    disp = method.register(a, b).displacement
    before = ((a - b) ** 2).mean().item()
    after = ((spatial.warp(a, disp) - b) ** 2).mean().item()
    return summary, before, after, disp[0, 0, margin:-margin, margin:-margin].mean().item()


def assert_same_weights(method, back) -> None:
    """Every tensor of `back` (a method saved and loaded again) equals `method`'s."""
    state = back.state_dict()
    for k, v in method.state_dict().items():
        assert torch.equal(v, state[k]), k
