"""Transforms as functions of [0, 1] coordinates (ICON's map algebra), their composition along a
path of registrations, and the Jacobian-identity penalty GradICON and GradCyCon share.

A map phi_XY = net(X, Y) warps X onto Y: ``X o phi_XY ~ Y``; as a function it takes coordinates of
Y's grid to coordinates of X's grid (a backward map, [0, 1] per axis, `nets.tallunet.identity01`).
A path X -> Y -> Z warps X by phi_XY o phi_YZ: x -> phi_XY(phi_YZ(x)), the FIRST map of the path
outermost (ICON's TwoStepRegistration, M2M-Reg's Eqs. 2-3). `compose_maps(maps, "icon")` does that;
`"reversed"` applies the first map innermost, x -> phi_YZ(phi_XY(x)), as the official M2M-Reg code
does (models.py: `phi_BAc(phi_AB(I))`, the cycle `phi_BcA(phi_AcBc(phi_BAc(phi_AB(I))))`), which
is a different map whenever the maps do not commute.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..configs.m2m_reg import COMPOSITIONS
from ..nets.tallunet import identity01, sample01

Map = Callable[[torch.Tensor], torch.Tensor]

FD_STEP = 1e-3          # ICON's finite-difference step of the Jacobian of the consistency error


def compose_maps(maps: Sequence[Map], order: str = "icon") -> Map:
    """The map of a path whose registrations are `maps` in path order (module docstring)."""
    if order not in COMPOSITIONS:
        raise ValueError(f"composition must be one of {COMPOSITIONS}, got {order!r}")
    maps = list(maps)
    if not maps:
        raise ValueError("need at least one map")
    inner_first = list(reversed(maps)) if order == "icon" else maps

    def composed(x: torch.Tensor) -> torch.Tensor:
        for m in inner_first:
            x = m(x)
        return x
    return composed


def voxels_to_unit(disp: torch.Tensor) -> torch.Tensor:
    """A displacement in voxels (B, D, *S) in [0, 1] units: component d divided by N_d - 1."""
    shape = disp.shape[2:]
    scale = torch.tensor([1.0 / max(n - 1, 1) for n in shape], dtype=disp.dtype, device=disp.device)
    return disp * scale.view(1, -1, *([1] * len(shape)))


def unit_to_voxels(disp01: torch.Tensor) -> torch.Tensor:
    """The inverse of `voxels_to_unit`."""
    shape = disp01.shape[2:]
    scale = torch.tensor([float(max(n - 1, 1)) for n in shape], dtype=disp01.dtype, device=disp01.device)
    return disp01 * scale.view(1, -1, *([1] * len(shape)))


def field_map(disp01: torch.Tensor) -> Map:
    """x -> x + disp01 sampled at x (ICON's FunctionFromVectorField: bilinear, border padding)."""
    return lambda x: x + sample01(disp01, x)


def noisy_identity(shape: Sequence[int], device, dtype, sparse: bool = True) -> torch.Tensor:
    """ICON's I_epsilon: the identity plus N(0, 1) * 2 / N_last (sparse: on every other voxel, as
    M2M-Reg's create_Iepsilon and uniGradICON's GradientICONSparse) or N(0, 1) / N_last (dense)."""
    ident = identity01(shape, device, dtype)
    eps = ident + torch.randn(ident.shape, device=device, dtype=dtype) * (2 if sparse else 1) / shape[-1]
    if sparse:
        eps = eps[(slice(None), slice(None), *[slice(None, None, 2)] * len(shape))]
    return eps


def jacobian_identity_penalty(phi: Map, eps: torch.Tensor, step: float = FD_STEP) -> torch.Tensor:
    """sum_d mean |d/dd (eps - phi(eps))|^2 by finite differences of step `step` (GradICON's loss
    for phi = phi_AB o phi_BA; GradCyCon's for phi = the composed cycle): 0 iff phi's Jacobian is I
    at the sample points (up to the finite difference)."""
    ndim = eps.shape[1]
    err = eps - phi(eps)
    total = 0
    for d in range(ndim):
        delta = torch.zeros(1, ndim, *[1] * ndim, device=eps.device, dtype=eps.dtype)
        delta[:, d] = step
        err_d = eps + delta - phi(eps + delta)
        total = total + torch.mean(((err - err_d) / step) ** 2)
    return total
