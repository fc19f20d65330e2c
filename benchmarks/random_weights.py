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


def seeded(shape, seed: int, dtype=torch.float32) -> torch.Tensor:
    """Uniform [0, 1) values from their own generator: the same inputs on both sides."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def small_uniform(module: nn.Module, seed: int) -> None:
    """Uniform weights in [-0.2, 0.2) (matrices) and [-0.1, 0.1) (vectors), in parameter order:
    small enough that a chain of ICON steps keeps its maps near the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.rand(p.shape, generator=g) - 0.5) * (0.4 if p.ndim > 1 else 0.2))
