"""LDM-Morph (Wu & Gong): latent diffusion features in a dual-stream Swin / cross-attention
registration network, trained with a hierarchical (pixel + latent) similarity.

Networks: `nets.ldm_morph.LDMMorphNet` (the official ``LDMMorph``) and the frozen latent diffusion
model `features.latent_diffusion.LatentDiffusion` (VQ encoder + LDM U-Net), pretrained by the stage
`ldm_morph_latent_diffusion` (or the official checkpoint a user gives), setting `ldm`.

Loss (Eqs. 12-16, the text's intent): beta * MSE(M o phi, F) + (1 - beta) * MSE(E(M o phi), E(F))
+ lambda * smooth(phi), beta 0.6, lambda 0.01. Eqs. 14-15 as printed put beta and 1 - beta inside
the two terms as well, which would weigh them by beta^2 and (1 - beta)^2: a typo (Eq. 13 already
weighs them); we weigh once. E is the frozen VQ encoder (+ quant_conv, not quantised).
- `detach_latent: false` (the paper): the latent term's gradient flows through the frozen
  encoder into the field; `true` (the official code, ``train.py:201`` with ``encode_first_stage``
  under ``no_grad``, ``ddpm.py:825``): the warped image's latent is detached, so the latent term
  has no gradient and only shifts the loss value.
- beta = 1 drops the latent term (not computed).
- smooth: the official ``smoothloss`` on the network's field in normalised units: mean over the
  two axes of mean (d phi_axis * N_axis / 2)^2 (about the voxel-unit diffusion regulariser;
  (N / (N - 1))^2 = 1.016 times it at 128^2); the paper's Eq. 16 writes a sum, without scale.
Features: one q_sample at t = 1 with the same noise for moving and fixed (the code); `inversion:
ddim` the paper's DDIM inversion. Training: Adam 1e-4, batch 1, 24 001 iterations (the official
``train.py`` defaults; the paper gives no length), moving and fixed frames of one subject.
Table 3 ablations: `features: false` (no LDM-FE, no LGCA), `lgca: false`, beta 1 (no L_lat).

The official code samples its validation features with the last training step's noise and picks
the checkpoint of best validation Dice; here the last model is kept and each registration draws
its noise from the registration's seeded generator (deterministic for a seed).
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from .. import spatial
from ..configs.ldm_morph import NETWORKS, LDMMorphConfig
from ..errors import InputError
from ..features.latent_diffusion import LatentDiffusion, load_latent_diffusion
from ..nets.adm import ADMConfig, ADMUNet
from ..nets.ldm_morph import LDMMorphNet
from ..nets.vq_autoencoder import VQAutoencoder, VQConfig
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .pairs import pad_to_multiple
from .result import RegistrationResult


def official_smoothness(u: torch.Tensor) -> torch.Tensor:
    """The official smoothloss of a field in normalised units (B, 2, H, W)."""
    h, w = u.shape[-2:]
    dy = (u[:, :, 1:, :] - u[:, :, :-1, :]) * (h / 2)
    dx = (u[:, :, :, 1:] - u[:, :, :, :-1]) * (w / 2)
    return ((dy * dy).mean() + (dx * dx).mean()) / 2


def to_voxels(u: torch.Tensor) -> torch.Tensor:
    """Normalised (align_corners=True) displacement -> voxels: channel c times (N_c - 1) / 2."""
    scale = torch.tensor([(n - 1) / 2 for n in u.shape[2:]], dtype=u.dtype, device=u.device)
    return u * scale.view(1, -1, 1, 1)


class LDMMorphObjective(Objective):
    def __init__(self, method: "LDMMorph"):
        self.method = method

    def sample(self, data: TrainingSet, rng: np.random.Generator, batch_size: int):
        return data.sample(rng, batch_size, self.method.cfg.inter_subject)

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        moving, fixed = batch
        m, _ = pad_to_multiple(moving, self.method.multiple)
        f, _ = pad_to_multiple(fixed, self.method.multiple)
        return self.method.loss_terms(nets, m, f)


@METHODS.register("ldm_morph")
class LDMMorph(Method):
    name = "ldm_morph"
    Config = LDMMorphConfig
    cfg: LDMMorphConfig

    def __init__(self, ndim: int, config: dict | LDMMorphConfig, device: torch.device):
        super().__init__(ndim, config, device)

        c = self.cfg
        ldm = self._latent_diffusion() if c.needs_ldm else None
        kw = {**NETWORKS[c.network], **c.net_kwargs, "lgca": c.lgca, "features": c.features}
        if ldm is not None:
            kw["feature_channels"] = ldm.channels
        elif "feature_channels" not in kw:
            kw["feature_channels"] = (4, 4, 4, 4)      # unused without features
        self.nets["net"] = LDMMorphNet(**kw).to(device)
        self.multiple = self.nets["net"].multiple
        if ldm is not None:
            self.nets["ldm"] = ldm.to(device)
            self.multiple = int(np.lcm(self.multiple, ldm.multiple))

    def _latent_diffusion(self):
        """From the recorded architecture (a trained model: weights follow from model.pt), else
        from the `ldm` file (training)."""
        c = self.cfg
        if c.ldm_arch:
            return LatentDiffusion(VQAutoencoder(VQConfig.from_dict(c.ldm_arch["vq"])),
                                   ADMUNet(ADMConfig.from_dict(c.ldm_arch["unet"])), t=c.feature_t,
                                   inversion=c.inversion)
        if not c.ldm or isinstance(c.ldm, dict):
            raise InputError("ldm_morph needs its latent diffusion model: setting ldm (the file of the stage "
                             "ldm_morph_latent_diffusion, or the official LDM checkpoint)")
        ldm = load_latent_diffusion(c.ldm, t=c.feature_t, inversion=c.inversion)
        c.ldm_arch = {"vq": ldm.vq.config.to_dict(), "unet": ldm.unet.config.to_dict()}
        return ldm

    # ------------------------------------------------------------------ training
    def field(self, nets, m: torch.Tensor, f: torch.Tensor, generator: torch.Generator | None = None,
              return_fixed_latent: bool = False):
        """The network's displacement in normalised units for padded images in [0, 1] (and E(f),
        which the features computed anyway, else None)."""
        feats = zf = None
        if self.cfg.features:
            feats, _, zf = nets["ldm"].features(m, f, generator, return_latents=True)
        u = nets["net"](m, f, feats)
        return (u, zf) if return_fixed_latent else u

    def loss_terms(self, nets, m: torch.Tensor, f: torch.Tensor,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        c = self.cfg
        u, zf = self.field(nets, m, f, generator, return_fixed_latent=True)
        warped = spatial.warp(m, to_voxels(u))
        pixel = F.mse_loss(warped, f)
        smooth = official_smoothness(u)
        terms = {"pixel": pixel}
        loss = c.beta * pixel + c.lambda_reg * smooth
        if c.beta < 1:
            ldm = nets["ldm"]
            if zf is None:
                with torch.no_grad():
                    zf = ldm.encode(f)
            if c.detach_latent:
                with torch.no_grad():
                    zw = ldm.encode(warped)
            else:
                zw = ldm.encode(warped)          # frozen weights, gradient to the field
            latent = F.mse_loss(zw, zf)
            loss = loss + (1 - c.beta) * latent
            terms["latent"] = latent
        terms["smooth"] = smooth
        return {"loss": loss, **terms}

    def objective(self, data: TrainingSet) -> Objective:
        if any(n % self.multiple for n in data.shape):
            print(f"[train {self.name}] images {'x'.join(map(str, data.shape))} padded to multiples of "
                  f"{self.multiple}", flush=True)
        return LDMMorphObjective(self)

    def fit(self, data, log_path=None) -> dict:
        summary = super().fit(data, log_path)
        c = self.cfg
        summary.update(beta=c.beta, lambda_reg=c.lambda_reg, detach_latent=c.detach_latent, inversion=c.inversion,
                       parameters={k: v[0] for k, v in self.parameter_counts().items()})
        return summary

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        self.nets.eval()
        moving, fixed = moving.to(self.device), fixed.to(self.device)
        m, crop = pad_to_multiple(moving, self.multiple)
        f, _ = pad_to_multiple(fixed, self.multiple)
        u = to_voxels(self.field(self.nets, m, f, generator))
        return RegistrationResult(u[tuple(crop)].cpu())
