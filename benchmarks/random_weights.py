"""Identical random weights for a module and its official twin (the fidelity scripts)."""
from __future__ import annotations

import math

import torch
from torch import nn


def unit_gain(module: nn.Module, seed: int, scaled: tuple[str, ...] = (), scale: float = 1.0) -> None:
    """Uniform weights of unit gain (matrices) and in [-0.5, 0.5) (vectors), in parameter order;
    parameters whose name contains one of `scaled` times `scale` (e.g. a flow head x 0.1, so that
    fields are a few voxels, as in registration)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            r = torch.rand(p.shape, generator=g) * 2 - 1
            r = r * math.sqrt(3 * p.shape[0] / p.numel()) if p.ndim > 1 else r / 2
            p.copy_(r * scale if any(s in name for s in scaled) else r)
