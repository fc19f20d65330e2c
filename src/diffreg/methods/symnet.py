"""SYMNet (Mok & Chung, CVPR 2020): fast symmetric diffeomorphic registration.

One U-Net (nets.symnet, the official layout) maps (X, Y) to two stationary velocity fields
v_XY, v_YX. Scaling and squaring gives the half-way maps phi_XY(0.5) = exp(v_XY / 2),
phi_YX(0.5), and their inverses exp(-v / 2); the full maps are the compositions

    phi_XY = phi_XY(0.5) o phi_YX(0.5)^-1,    phi_YX = phi_YX(0.5) o phi_XY(0.5)^-1,

and the loss (the paper's; the official Train_sym_onepass.py term by term) is

    L = -NCC(X o phi_XY(0.5), Y o phi_YX(0.5)) - NCC(Y, X o phi_XY) - NCC(X, Y o phi_YX)
        + lambda_mag |sum|phi_XY(0.5)| - sum|phi_YX(0.5)|| / N          (magnitude constraint)
        + lambda_jdet (mean relu(-det J_phi_XY) + mean relu(-det J_phi_YX))   (local orientation)
        + lambda_reg (Grad-l2(v_XY) + Grad-l2(v_YX))                       (smoothness)

NCC is VoxelMorph's squared local cc in a box window (cov^2 / (var var + 1e-5) on window sums,
zero-padded), the determinant uses forward differences, Grad-l2 is the `diffusion` regulariser.
Registration of moving X to fixed Y returns phi_XY (voxels, backward map).

Paper vs official code (both selectable; the paper's is the default):
- integration: "half" (paper: the network's field integrated to time 0.5, exp(v/2) by T-1
  squarings of v/2^T) or "full" (the code since its README's note: exp(v), T squarings).
- lambda_jdet: paper 1000 (lambda_1), code default `--local_ori` 100.
Code-only details we follow (the paper does not state them): velocities are softsign outputs
times range_flow = 100 voxels; every warp and composition samples with zero padding
(grid_sample's default there); NCC window 7 (Train_sym_onepass.py; the OASIS script uses 5).
The paper's SYMNet is 3D; 2D runs the same network with 2D convolutions.
"""
from __future__ import annotations


import torch

from .. import spatial
from ..configs.symnet import SYMNetConfig
from ..losses import build_regulariser
from ..losses.similarity import LNCC
from ..nets.symnet import SYMNetUNet, to_voxels
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .pairs import pad_to_multiple
from .result import RegistrationResult


def voxelmorph_ncc(ndim: int, window: int) -> LNCC:
    """VoxelMorph's NCC as LNCC: box window sums, zero padding, cov^2 / (var var + 1e-5) on sums,
    i.e. eps 1e-5 / n^2 on window means (n = window^ndim voxels)."""
    return LNCC("box", size=window, squared=True, border="zeros", eps=1e-5 / window ** (2 * ndim),
                eps_form="product")


def neg_jacobian(u: torch.Tensor) -> torch.Tensor:
    """mean relu(-det J) of x + u(x) with forward differences on the first N-1 voxels of every axis
    (the official JacboianDet / neg_Jdet_loss; its reversed axis order leaves det unchanged)."""
    ndim = u.ndim - 2
    corner = (slice(None), slice(None)) + (slice(0, -1),) * ndim
    base = u[corner]
    cols = []
    for d in range(ndim):
        shifted = (slice(None), slice(None)) + tuple(slice(1, None) if k == d else slice(0, -1) for k in range(ndim))
        cols.append(u[shifted] - base)                         # d u_i / d x_d, (B, D, *S')
    jac = torch.stack(cols, dim=-1).movedim(1, -2)              # (B, *S', D_i, D_d)
    jac = jac + torch.eye(ndim, dtype=u.dtype, device=u.device)
    return torch.relu(-torch.linalg.det(jac)).mean()


class SYMNetObjective(Objective):
    def __init__(self, method: "SYMNet"):
        self.method = method

    def sample(self, data: TrainingSet, rng, batch_size: int):
        return data.sample(rng, batch_size, self.method.cfg.inter_subject)

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        return self.method.terms(nets["net"], *batch)


@METHODS.register("symnet")
class SYMNet(Method):
    name = "symnet"
    Config = SYMNetConfig
    cfg: SYMNetConfig

    def __init__(self, ndim: int, config, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        self.nets["net"] = SYMNetUNet(ndim, 2, c.start_channel).to(device)
        self.ncc = voxelmorph_ncc(ndim, c.ncc_window).to(device)
        self.grad = build_regulariser("diffusion")

    def velocities(self, net, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v_XY, v_YX in voxels on the input grid (the network sees it padded to a multiple of 16)."""
        xp, crop = pad_to_multiple(x, SYMNetUNet.multiple)
        yp, _ = pad_to_multiple(y, SYMNetUNet.multiple)
        v_xy, v_yx = net(xp, yp)
        r = self.cfg.range_flow
        return to_voxels(v_xy[tuple(crop)], r), to_voxels(v_yx[tuple(crop)], r)

    def exp(self, v: torch.Tensor) -> torch.Tensor:
        """Scaling and squaring: v / 2^T, then T - 1 ("half": exp(v/2)) or T ("full") squarings."""
        c = self.cfg
        u = v / 2 ** c.time_steps
        for _ in range(c.time_steps - (1 if c.integration == "half" else 0)):
            u = spatial.compose(u, u, padding=c.padding)
        return u

    def maps(self, net, x, y) -> dict[str, torch.Tensor]:
        pad = self.cfg.padding
        v_xy, v_yx = self.velocities(net, x, y)
        half_xy, half_yx = self.exp(v_xy), self.exp(v_yx)
        inv_xy, inv_yx = self.exp(-v_xy), self.exp(-v_yx)
        return dict(v_xy=v_xy, v_yx=v_yx, half_xy=half_xy, half_yx=half_yx,
                    phi_xy=spatial.compose(half_xy, inv_yx, padding=pad),
                    phi_yx=spatial.compose(half_yx, inv_xy, padding=pad))

    def terms(self, net, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.cfg
        m = self.maps(net, x, y)

        def warp(img, u):
            return spatial.warp(img, u, padding=c.padding)

        sim_mid = -self.ncc.similarity(warp(x, m["half_xy"]), warp(y, m["half_yx"]))
        sim_full = -self.ncc.similarity(y, warp(x, m["phi_xy"])) - self.ncc.similarity(x, warp(y, m["phi_yx"]))
        mag = (m["half_xy"].abs().sum() - m["half_yx"].abs().sum()).abs() / m["half_xy"].numel()
        jdet = neg_jacobian(m["phi_xy"]) + neg_jacobian(m["phi_yx"])
        smooth = self.grad(m["v_xy"]) + self.grad(m["v_yx"])
        loss = sim_mid + sim_full + c.lambda_mag * mag + c.lambda_jdet * jdet + c.lambda_reg * smooth
        return {"loss": loss, "sim_mid": sim_mid, "sim_full": sim_full, "magnitude": mag,
                "jdet": jdet, "smooth": smooth}

    def objective(self, data: TrainingSet) -> Objective:
        return SYMNetObjective(self)

    @torch.no_grad()
    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        net = self.nets["net"].eval()
        c = self.cfg
        v_xy, v_yx = self.velocities(net, moving.to(self.device), fixed.to(self.device))
        phi = spatial.compose(self.exp(v_xy), self.exp(-v_yx), padding=c.padding)
        return RegistrationResult(phi.cpu())
