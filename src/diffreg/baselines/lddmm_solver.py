"""The LDDMM solver of the `lddmm` baseline (baselines/lddmm.py), in PyTorch.

Energy: E(v) = 1/(2 sigmaR^2) sum_t <A v_t, v_t> dt + 1/(2 sigma^2) ||I o phi_1^-1 - J||^2 with
A = (1 - a^2 Lap)^(2p) (discrete Laplacian, periodic FFT). The matching gradient is taken by
autograd through the discrete flow (so it is exact for the discretised energy) and preconditioned
by K = A^-1, which gives Beg's V-gradient  K * dE_M/dv_t + v_t / sigmaR^2.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .. import spatial


def kernel_hat(shape, a: float, p: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """K = 1 / (1 - a^2 Lap)^(2p) on the half spectrum that ``torch.fft.rfftn`` returns.

    The discrete Laplacian's symbol is sum_d 2 (cos(2 pi f_d) - 1) (f in cycles per voxel)."""
    freqs = [torch.fft.fftfreq(n, device=device, dtype=torch.float64) for n in shape[:-1]]
    freqs.append(torch.fft.rfftfreq(shape[-1], device=device, dtype=torch.float64))
    grids = torch.meshgrid(*freqs, indexing="ij")
    lap = sum(2.0 * (torch.cos(2 * math.pi * f) - 1.0) for f in grids)
    return (1.0 / (1.0 - a ** 2 * lap) ** (2 * p)).to(dtype)


def _smooth(x: torch.Tensor, k_hat: torch.Tensor) -> torch.Tensor:
    """Apply K (or 1/K) to each channel of (..., *S) by FFT over the spatial axes."""
    dims = tuple(range(x.ndim - k_hat.ndim, x.ndim))
    return torch.fft.irfftn(torch.fft.rfftn(x, dim=dims) * k_hat, s=x.shape[-k_hat.ndim:], dim=dims)


def flow_inverse(v: torch.Tensor, dt: float) -> torch.Tensor:
    """Displacement of phi_1^-1 from velocities v (T, D, *S): phi_{t+1}^-1 = phi_t^-1 o (id - v_t dt),
    integrated one time step at a time (semi-Lagrangian)."""
    d = torch.zeros_like(v[:1])
    for t in range(v.shape[0]):
        d = spatial.compose(d, -v[t:t + 1] * dt)
    return d


def lddmm(moving: np.ndarray, fixed: np.ndarray, *, a: float, p: float, sigma: float, sigma_r: float,
          nt: int, niter: int, epsilon: float, min_beta: float, energy_fraction: float,
          intensity_scale: float, backtrack: bool = True, device: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """Register ``moving`` (template) to ``fixed`` (target); returns the voxel displacement
    u = phi_1^-1 - id (D, *S), so that warp(moving, u) ~ fixed, and a short optimisation log."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    dtype = torch.float32
    shape = tuple(fixed.shape)
    ndim = len(shape)
    img = torch.as_tensor(np.asarray(moving, dtype=np.float32) * intensity_scale, device=dev)[None, None]
    tgt = torch.as_tensor(np.asarray(fixed, dtype=np.float32) * intensity_scale, device=dev)[None, None]
    k_hat = kernel_hat(shape, a, p, device=dev, dtype=dtype)
    dt = 1.0 / nt

    def evaluate(v: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Energy at v and its V-gradient."""
        v_req = v.detach().requires_grad_(True)
        e_match = ((spatial.warp(img, flow_inverse(v_req, dt)) - tgt) ** 2).sum() / (2 * sigma ** 2)
        (g_match,) = torch.autograd.grad(e_match, v_req)
        with torch.no_grad():
            e_reg = (v * _smooth(v, 1.0 / k_hat)).sum() * 0.5 / sigma_r ** 2 * dt
            # autograd gives dt * (the continuous gradient density) for each time step
            grad = _smooth(g_match / dt, k_hat) + v / sigma_r ** 2
        return float(e_match.detach() + e_reg), grad

    v = torch.zeros((nt, ndim, *shape), device=dev, dtype=dtype)
    energy, grad = evaluate(v)
    energies = [energy]
    beta, accepted, stop = 1.0, 0, "iterations"
    for _ in range(niter - 1):
        v_try = v - epsilon * beta * grad
        e_try, g_try = evaluate(v_try)
        energies.append(e_try)
        if e_try >= energy or e_try / energy > 0.99999:
            beta *= 0.7   # TransMorph's rule: shrink the step when the energy does not decrease
        if e_try < energy or not backtrack:
            v, energy, grad = v_try, e_try, g_try
            accepted += 1
        if energy <= energy_fraction * energies[0]:
            stop = "energy fraction"
            break
        if beta < min_beta:
            stop = "step size"
            break
    with torch.no_grad():
        disp = flow_inverse(v, dt)[0]
    log = {"iterations": len(energies), "accepted_steps": accepted, "stop": stop,
           "energy_first": energies[0], "energy_last": energy, "device": str(dev)}
    return disp.detach().cpu().double().numpy(), log
