"""FSDiffReg (Qin & Li, MICCAI 2023): feature-wise and score-wise diffusion-guided unsupervised
deformable registration, after its official code (xmed-lab/FSDiffReg), which is DiffuseMorph's
code with two changes:

- feature-wise guidance (nets.fsdiffreg): the field comes from a registration decoder inside the
  diffusion U-Net that reads the diffusion decoder's features, fused by attention at every block,
  instead of a separate deformation network on (moving, eps-hat);
- score-wise guidance (the loss): DiffuseMorph's squared local NCC is weighted voxel-wise by
  sigmoid(eps-hat)^gamma before the mean; eps-hat keeps its gradient through the weight, as in
  the code (crossCorrelation3D's `flow` argument).

    L = ||eps-hat - eps||^2 - lam mean(sigmoid(eps-hat)^gamma NCC^2(m o phi, f)) + lam lambda_reg Grad-l2(phi)
    (eps-hat, phi) = G(concat(m, f, x_t), t),   x_t = sqrt(abar_t) f + sqrt(1 - abar_t) eps

Registration: phi from G(concat(m, f, f), t = 0) (the code's p_sample_loop). No continuous
trajectory (the field no longer takes a scaled eps-hat).

Reused from DiffuseMorph (methods.diffusemorph): the noise schedule (linear 1e-6 .. 1e-2, T = 2000),
q_sample, the training sampler (images to [-1, 1], padded to the U-Net's multiple, t uniform), the
squared NCC (9^d box window, the warped moving in [0, 1] against (f + 1) / 2),
the Grad-l2 regulariser and the warp ((moving + 1) / 2, zeros outside the image, as the code's 3D
transformer).

Weights as DiffuseMorph's: `lam` weights the registration loss (similarity and smoothness) against
the diffusion loss, not a regularisation weight; `lambda_reg` is the smoothness weight inside it.
Defaults are the official code's (config/train_3D.json, model/model.py, diffusion.py): lam 20
(hard-coded `* 20` on both terms), lambda_reg 1, gamma 1, Adam 2e-4 with betas (0.5, 0.999),
batch 1. The code is 3D only; 2D uses DiffuseMorph's 2D U-Net size with the same settings.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from .. import spatial
from ..configs.fsdiffreg import FSDiffRegConfig
from ..errors import InputError
from ..losses import build_regulariser
from ..losses.similarity import LNCC
from ..nets.fsdiffreg import OFFICIAL, FSDiffRegUNet
from .base import METHODS, Method
from .diffusemorph import NCC_WINDOW, NETWORKS as DM_NETWORKS, DiffuseMorph, DiffuseMorphObjective, \
    make_scheduler
from .pairs import pad_to_multiple
from .result import RegistrationResult

NETWORKS = {"official": {nd: dict(OFFICIAL[nd]) for nd in (2, 3)},
            "small": {nd: dict(DM_NETWORKS["small"][nd][0]) for nd in (2, 3)}}


class FSDiffRegObjective(DiffuseMorphObjective):
    """DiffuseMorph's sampler and noising; FSDiffReg.loss_terms computes the terms."""


@METHODS.register("fsdiffreg")
class FSDiffReg(DiffuseMorph):
    name = "fsdiffreg"
    OBJECTIVE = FSDiffRegObjective
    Config = FSDiffRegConfig
    cfg: FSDiffRegConfig

    def __init__(self, ndim: int, config, device: torch.device):
        # not DiffuseMorph.__init__: FSDiffReg has no separate deformation network
        Method.__init__(self, ndim, config, device)
        c = self.cfg
        try:
            self.nets["unet"] = FSDiffRegUNet(ndim, **{**NETWORKS[c.network][ndim], **c.unet_kwargs}).to(device)
        except (TypeError, ValueError) as exc:
            raise InputError(f"fsdiffreg: unet_kwargs {c.unet_kwargs}: {exc}") from None
        self.multiple = self.nets["unet"].multiple
        self.ncc = LNCC("box", size=NCC_WINDOW, squared=True, border="zeros",
                        eps=1e-5 / NCC_WINDOW ** (2 * ndim), eps_form="product").to(device)
        self.smooth = build_regulariser("diffusion").to(device)
        self.scheduler = make_scheduler(c)
        self.abar = self.scheduler.alphas_cumprod.to(device)

    def warp(self, m: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """(m + 1) / 2 warped with zeros outside (the code's Dense3DSpatialTransformer)."""
        return spatial.warp((m + 1) / 2, flow, padding="zeros")

    def loss_terms(self, nets, m: torch.Tensor, f: torch.Tensor, noise: torch.Tensor,
                   t: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official p_losses for images in [-1, 1]; `sim` and `smooth` carry their weights."""
        c = self.cfg
        eps_hat, flow = nets["unet"](torch.cat([m, f, self.q_sample(f, t, noise)], 1), t)
        warped = self.warp(m, flow)
        weight = torch.sigmoid(eps_hat) ** c.gamma               # score-wise guidance
        sim = -c.lam * (self.ncc.cc_map(warped, (f + 1) / 2) * weight).mean()
        smooth = c.lam * c.lambda_reg * self.smooth(flow)
        pix = F.mse_loss(eps_hat, noise)
        return {"loss": pix + sim + smooth, "pix": pix, "sim": sim, "smooth": smooth}

    @torch.no_grad()
    def field(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """phi of G(concat(m, f, f), t = 0) for images in [0, 1], voxels, on the input grid."""
        self.nets.eval()
        m, crop = pad_to_multiple(2 * moving.to(self.device) - 1, self.multiple)
        f, _ = pad_to_multiple(2 * fixed.to(self.device) - 1, self.multiple)
        t0 = torch.zeros(m.shape[0], dtype=torch.long, device=m.device)
        return self.nets["unet"](torch.cat([m, f, f], 1), t0)[1][tuple(crop)]

    def trajectory(self, moving, fixed, etas):
        raise InputError("fsdiffreg has no continuous trajectory (its field does not take a scaled score)")

    def generate(self, *args, **kwargs):
        raise InputError("fsdiffreg does not generate images")

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        return RegistrationResult(self.field(moving, fixed).cpu())
