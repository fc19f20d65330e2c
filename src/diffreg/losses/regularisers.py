"""Regularisers of displacement fields (B, D, *S), voxel units: forward(...) -> scalar loss."""
from __future__ import annotations

import torch
from torch import nn

from diffreg.spatial import compose
from .registries import REGULARISERS


def forward_differences(u: torch.Tensor) -> list[torch.Tensor]:
    """u[x + e_d] - u[x] along each spatial axis d (each one voxel shorter along d)."""
    return [torch.diff(u, dim=2 + d) for d in range(u.ndim - 2)]


@REGULARISERS.register("diffusion")
class Diffusion(nn.Module):
    """First-order (diffusion) regulariser with forward differences, VoxelMorph's Grad('l2'):
    mean over axes d of mean_x |u(x + e_d) - u(x)|^2. MONAI's DiffusionLoss uses central differences,
    so its lambda values do not transfer; hence our own."""

    def __init__(self, penalty: str = "l2"):
        super().__init__()
        if penalty not in ("l1", "l2"):
            raise ValueError(f"diffusion penalty must be 'l1' or 'l2', got {penalty!r}")
        self.penalty = penalty

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        diffs = forward_differences(u)
        terms = [(g * g).mean() if self.penalty == "l2" else g.abs().mean() for g in diffs]
        return torch.stack(terms).mean()


@REGULARISERS.register("diffusion_icon")
class DiffusionICON(nn.Module):
    """The official DGIR regulariser (DiffusionRegularizedNet of uncbiag/dgir) on a voxel
    displacement u: with phi - id in [0, 1] coordinates, component c = u_c / (N_c - 1),
    sum over axes d of mean_{b, c, x} |phi(x + e_d) - phi(x)|^2, times N_0^2 (the FIRST axis's
    size for every component). On a cubic N^D grid this is D (N / (N - 1))^2 x `diffusion`; on
    224 x 192 x 160 the components weigh (224/223)^2, (224/191)^2, (224/159)^2 relative to voxels."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        shape = u.shape[2:]
        scale = torch.tensor([float(shape[0]) / max(n - 1, 1) for n in shape], dtype=u.dtype, device=u.device)
        v = u * scale.view(1, -1, *([1] * len(shape)))
        return torch.stack([(g * g).mean() for g in forward_differences(v)]).sum()


def _second_difference(u: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """d^2 u / dx_i dx_j on the interior (every axis cropped by one voxel each side): the [1, -2, 1]
    stencil for i == j, the 4-point central stencil / 4 otherwise."""
    ndim = u.ndim - 2

    def shifted(offsets: dict[int, int]) -> torch.Tensor:
        idx = [slice(None), slice(None)]
        for d in range(ndim):
            o = offsets.get(d, 0)
            idx.append(slice(1 + o, u.shape[2 + d] - 1 + o))
        return u[tuple(idx)]

    if i == j:
        return shifted({i: 1}) - 2 * shifted({}) + shifted({i: -1})
    return (shifted({i: 1, j: 1}) - shifted({i: 1, j: -1}) - shifted({i: -1, j: 1}) + shifted({i: -1, j: -1})) / 4.0


@REGULARISERS.register("bending")
class Bending(nn.Module):
    """Bending energy: mean over batch, components and interior voxels of
    sum_i (d^2u/dx_i^2)^2 + 2 sum_{i<j} (d^2u/dx_i dx_j)^2, in voxel units.

    The same quantity as MONAI's BendingEnergyLoss (tested equal); own code because MONAI's indexes
    tensors with lists, which torch deprecates."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        ndim = u.ndim - 2
        if any(n < 3 for n in u.shape[2:]):
            raise ValueError(f"bending energy needs at least 3 voxels per axis, got {tuple(u.shape)}")
        energy = 0.0
        for i in range(ndim):
            energy = energy + _second_difference(u, i, i) ** 2
            for j in range(i + 1, ndim):
                energy = energy + 2 * _second_difference(u, i, j) ** 2
        return energy.mean()


def jacobian_penalty(c: torch.Tensor) -> torch.Tensor:
    """|grad c|^2 of a displacement c = |J(x + c(x)) - I|_F^2 by forward differences: per direction
    the mean over batch, components and voxels, summed over directions (ICON's scaling)."""
    return torch.stack([(g * g).mean() for g in forward_differences(c)]).sum()


def compose_chain(fields) -> torch.Tensor:
    """Displacement of phi_1 o phi_2 o ... o phi_k for fields [u_1, ..., u_k] (u_k sampled first)."""
    fields = list(fields)
    if not fields:
        raise ValueError("need at least one displacement field")
    out = fields[-1]
    for u in reversed(fields[:-1]):
        out = compose(u, out)
    return out


@REGULARISERS.register("gradcycon")
class GradCyCon(nn.Module):
    """Cycle consistency of the Jacobian (M2M-Reg): for maps [u_1, ..., u_k] around a cycle, the
    composition phi_1 o ... o phi_k should be the identity, so its Jacobian should be I:
    loss = jacobian_penalty(compose_chain(fields)). ``forward(fields)`` takes the list."""

    def forward(self, fields) -> torch.Tensor:
        return jacobian_penalty(compose_chain(fields))


@REGULARISERS.register("gradicon")
class GradICON(nn.Module):
    """Gradient inverse consistency (Tian et al. 2023): Jacobian of phi_AB o phi_BA should be I.

    forward(u_ab, u_ba): u_ab = net(A, B) warps A onto B (warp(A, u_ab) ~ B); the composition
    phi_AB o phi_BA is ``compose(u_ab, u_ba)``. ``symmetric=True`` averages with phi_BA o phi_AB.
    ICON also jitters the sample grid; we evaluate on the voxel grid.
    """

    def __init__(self, symmetric: bool = False):
        super().__init__()
        self.symmetric = symmetric

    def forward(self, u_ab: torch.Tensor, u_ba: torch.Tensor) -> torch.Tensor:
        loss = jacobian_penalty(compose_chain([u_ab, u_ba]))
        if self.symmetric:
            loss = 0.5 * (loss + jacobian_penalty(compose_chain([u_ba, u_ab])))
        return loss
