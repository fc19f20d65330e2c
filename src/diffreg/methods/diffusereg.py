"""DiffuseReg (Zhuo & Shen, MICCAI 2024): a DDPM over the deformation field itself.

    x0 = (phi0 - mu) / sigma        phi0 = a frozen lowRes VTN's field (nets.vtn_lowres), z-scored per axis
    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,   eps_hat = D([M, F, x_t], t)
    L = 1.0 MSE(eps_hat, eps) + 1.0 (1 - SSIM(warp(M, phi_hat), F)) + 0.1 ||grad phi_hat||^2   (paper Eq. 3-4)
    phi_hat = sigma x0_hat + mu,    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)

Linear betas 1e-6 .. 1e-2, T = 2000 (diffusers' schedulers); AdamW 1e-4, weight decay 1e-4,
cosine to 1e-6 over the run; batch 1 in the paper (any here). Registration samples from pure noise:
DDPM, 2000 ancestral steps (the official `p_sample_loop`), or DDIM with any number of steps (the
paper's "6.5 min -> 0.5 min"); fields and warped images are saved at chosen steps (Fig. 3).

Code details kept (docs/diffusereg.md): the images are mapped to [-1, 1] (the official loader)
and the denoiser sees them z-scored jointly (M and F together, per sample; the official
`CFG_diffusion.py:298-301` over its batch of 1; the paper does not say); the SSIM compares the
warped [-1, 1] images with reflect padding (`loss.py:83-221`); warps use zero padding (the
official `SpatialTransform`). Table 2's variants are settings: `lambda_sim`/`lambda_reg` 0 (no
consistency terms), `cond_mask`, `time_resblocks`, `fusion: concat`, `use_phi0: false` (similarity
loss alone on noise, the official commented-out "without x0" path), `denoiser` (unet, uvit,
swin_unet, transmorph: input-level concatenation of [M, F, x_t] into the diffreg networks).
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..configs.diffusereg import DiffuseRegConfig
from ..errors import InputError
from ..losses import build_regulariser
from ..losses.ssim import ssim_map
from ..nets.adm import timestep_embedding
from ..nets.backbones import TransMorph
from ..nets.sr3_unet import OFFICIAL, SR3UNet
from ..nets.swin_unet import SWIN_UNET_SIZES, SwinUnet
from ..nets.uvit import UVIT_SIZES, UViT
from ..nets.vtn_lowres import LowResVTN, zero_padded_warp
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .result import RegistrationResult

# the paper's per-axis statistics of the VTN fields on the ACDC training set (Sec. 3; the official
# config/train_3D.json `flow_mean` / `flow_std`), in voxels, array-axis order (D, H, W)
OFFICIAL_MEAN = (0.0014, -0.0758, -0.1493)
OFFICIAL_STD = (0.4636, 1.1375, 1.2221)


# ---------------------------------------------------------------------------------- networks

def load_phi0(value, device) -> tuple[LowResVTN, dict]:
    """The lowRes VTN from a checkpoint path ({"cascade <i>": state}) or an architecture dict."""
    if isinstance(value, dict) and "im_size" in value:
        return LowResVTN(value["im_size"], value["n_cascades"], value["channels"]).to(device), dict(value)
    if not isinstance(value, str) or not value:
        raise InputError("diffusereg needs phi0: give --dep phi0=VTN_CHECKPOINT (the pretraining stage's "
                         "file or the official E2000.pth), or set use_phi0: false")
    try:
        ckpt = torch.load(value, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as e:
        raise InputError(f"diffusereg: phi0 = {value}: not a readable checkpoint ({e})") from None
    n = sum(1 for k in ckpt if str(k).startswith("cascade "))
    if n < 2 or "cascade 0" not in ckpt or "conv7_W.weight" not in ckpt["cascade 0"]:
        raise InputError(f"diffusereg: phi0 = {value}: not a lowRes VTN checkpoint ({{'cascade <i>': state}})")
    stem = ckpt["cascade 0"]
    arch = {"im_size": [16 * k for k in stem["conv7_W.weight"].shape[2:]], "n_cascades": n - 1,
            "channels": int(stem["conv1.1.weight"].shape[0])}
    vtn = LowResVTN(arch["im_size"], arch["n_cascades"], arch["channels"])
    vtn.load_official(ckpt)
    return vtn.to(device), arch


class FieldStats(nn.Module):
    """Per-axis mean and std of phi0 (buffers: saved with the model, never trained)."""

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1))


class Padded(nn.Module):
    """Zero-pads a denoiser's input to a multiple and crops its output (backbones that need one)."""

    def __init__(self, net: nn.Module, multiple: int, time: bool = True):
        super().__init__()
        self.net, self.multiple, self.time = net, multiple, time

    def forward(self, x, t):
        size = x.shape[2:]
        pad = [v for n in reversed(size) for v in (0, (-n) % self.multiple)]
        x = F.pad(x, pad) if any(pad) else x
        out = self.net(x, t) if self.time else self.net(x)
        return out[(slice(None), slice(None), *[slice(0, n) for n in size])]


class TimeChannel(nn.Module):
    """A network without a time input (TransMorph), told t by one more input channel: a learned
    linear map of t's sinusoidal embedding, constant over the image."""

    def __init__(self, net: nn.Module, dim: int = 32):
        super().__init__()

        self.net, self.dim, self._emb = net, dim, timestep_embedding
        self.time = nn.Linear(dim, 1)

    def forward(self, x, t):
        c = self.time(self._emb(t.reshape(-1), self.dim)).view(-1, 1, *([1] * (x.dim() - 2)))
        return self.net(torch.cat([x, c.expand(-1, 1, *x.shape[2:])], 1))


def build_denoiser(c: DiffuseRegConfig) -> nn.Module:
    """(B, 5, *S) = [M, F, x_t], t -> eps_hat (B, 3, *S)."""
    kw = dict(c.denoiser_kwargs)
    if c.denoiser == "swin_unetr":
        # deferred: the Swin denoiser is built from MONAI blocks, and importing MONAI costs every task ~2 s
        from ..nets.diffusereg_swin import diffusereg_swin
        return diffusereg_swin("official" if c.network == "official" else "small", cond_mask=c.cond_mask,
                               time_resblocks=c.time_resblocks, fusion=c.fusion, **kw)
    small = c.network == "small"
    if c.denoiser == "unet":       # the DDPM U-Net (SR3's, as DiffuseMorph's): input-level concatenation
        base = dict(OFFICIAL[3], inner_channel=4, channel_mults=(1, 2, 2, 2)) if small else dict(OFFICIAL[3])
        net = SR3UNet(3, **{**base, "in_channel": 5, "out_channel": 3, **kw})
        return Padded(net, net.multiple)
    if c.denoiser == "uvit":
        net = UViT(3, **{**UVIT_SIZES["small" if small else "full"][3], "in_channels": 5, "out_channels": 3,
                         "head_std": None, **kw})
        return net
    if c.denoiser == "swin_unet":
        net = SwinUnet(3, **{**SWIN_UNET_SIZES["small" if small else "full"][3], "in_channels": 5,
                             "out_channels": 3, "time_embed": True, **kw})
        return net

    tm = dict(embed_dim=12, depths=(1, 1, 1, 1), heads=(1, 1, 2, 2), window=(2, 2, 2)) if small else {}
    return Padded(TimeChannel(TransMorph(3, in_channels=6, **{**tm, **kw})), 32)


def ssim_loss_reflect(a: torch.Tensor, b: torch.Tensor, win: int, sigma: float,
                      data_range: float = 1.0) -> torch.Tensor:
    """1 - mean SSIM with the images reflect-padded by win // 2 (a score for every voxel): the
    official SSIM3D (its eps 1e-12 in the denominator is negligible)."""
    pad = [win // 2] * 6
    return 1 - ssim_map(F.pad(a, pad, mode="reflect"), F.pad(b, pad, mode="reflect"), win, sigma,
                        data_range=data_range).mean()


def grad_l2(u: torch.Tensor) -> torch.Tensor:
    """The official gradientLoss('l2'): mean over axes of mean squared forward differences."""
    return build_regulariser("diffusion")(u)


def joint_zscore(m: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[M, F] z-scored jointly per sample (one mean and std over both images)."""
    x = torch.cat([m, f], 1)
    flat = x.flatten(1)
    mean, std = flat.mean(1), flat.std(1)
    shape = (-1, 1, *([1] * (x.dim() - 2)))
    return (x - mean.view(shape)) / std.view(shape).clamp_min(1e-8)


def to_net(x: torch.Tensor, axes: str) -> torch.Tensor:
    """Images (B, C, X, Y, Z) -> the networks' layout: (B, C, Z, Y, X) for axes "zyx"."""
    return x.permute(0, 1, 4, 3, 2).contiguous() if axes == "zyx" else x


def field_from_net(u: torch.Tensor, axes: str) -> torch.Tensor:
    """A field in the networks' layout -> (B, 3, X, Y, Z) with channels in array-axis order."""
    return u.permute(0, 1, 4, 3, 2)[:, [2, 1, 0]].contiguous() if axes == "zyx" else u


def augment_pair(m: torch.Tensor, f: torch.Tensor, rng: np.random.Generator, axes: str = "zyx"):
    """The official augmentation (data/util_3D.py) of (B, 1, X, Y, Z) images: each with probability
    1/2, flip H, flip W, transpose H and W (where H == W), the same for both images. H and W are
    the in-plane axes (Y and X; with axes "xyz" the last two as stored)."""
    h, w = (3, 2) if axes == "zyx" else (3, 4)
    flips = [rng.random() < 0.5 for _ in range(3)]
    out = []
    for x in (m, f):
        if flips[0]:
            x = x.flip(h)
        if flips[1]:
            x = x.flip(w)
        if flips[2] and x.shape[h] == x.shape[w]:
            x = x.transpose(h, w)
        out.append(x.contiguous())
    return out


# ---------------------------------------------------------------------------------- schedulers

def make_schedulers(c: DiffuseRegConfig):
    """diffusers' DDPM (fixed_small posterior variance, no clipping: the official p_sample with
    clip_denoised=False) and DDIM schedulers on the same linear betas."""
    from diffusers import DDIMScheduler, DDPMScheduler

    kw = dict(num_train_timesteps=c.diffusion_steps, beta_start=c.beta_start, beta_end=c.beta_end,
              beta_schedule="linear", clip_sample=False)
    return (DDPMScheduler(**kw, variance_type="fixed_small"),
            DDIMScheduler(**kw, set_alpha_to_one=True, timestep_spacing="leading"))


class DiffuseRegObjective(Objective):
    def __init__(self, method: "DiffuseReg"):
        self.method = method

    def sample(self, data: TrainingSet, rng: np.random.Generator, batch_size: int):
        m, f = data.sample(rng, batch_size, self.method.cfg.inter_subject)
        if self.method.cfg.augment:
            m, f = augment_pair(m, f, rng, self.method.cfg.axes)
        return m, f

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        return self.method.loss_terms(nets, *batch)


@METHODS.register("diffusereg")
class DiffuseReg(Method):
    name = "diffusereg"
    Config = DiffuseRegConfig
    cfg: DiffuseRegConfig

    def __init__(self, ndim: int, config: dict | DiffuseRegConfig, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        self.nets["denoiser"] = build_denoiser(c).to(device)
        stats = (OFFICIAL_MEAN, OFFICIAL_STD) if c.flow_stats == "official" or not c.use_phi0 else ((0.0,) * 3, (1.0,) * 3)
        self.nets["field_stats"] = FieldStats(*stats).to(device)
        if c.use_phi0:
            vtn, arch = load_phi0(c.phi0, device)
            c.phi0 = arch
            vtn.requires_grad_(False)
            self.nets["phi0"] = vtn.eval()
        self.ddpm, self.ddim = make_schedulers(c)
        self.abar = self.ddpm.alphas_cumprod.to(torch.float32)
        self._stats_ready = c.flow_stats == "official" or not c.use_phi0

    # ------------------------------------------------------------------ phi0
    def phi0(self, nets, m: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """The VTN's field for images in [-1, 1], padded to its grid (multiples of 16) and cropped back."""
        vtn = nets["phi0"]
        size = m.shape[2:]
        target = vtn.im_size
        if any(n > s for n, s in zip(size, target)):
            raise InputError(f"diffusereg: images {tuple(size)} larger than the VTN's grid {tuple(target)}")
        pad = [v for n, s in zip(reversed(size), reversed(target)) for v in (0, s - n)]
        with torch.no_grad():
            flows, _, _ = vtn(F.pad(f, pad), F.pad(m, pad))
        return flows[-1][(slice(None), slice(None), *[slice(0, n) for n in size])]

    def fit_field_stats(self, data: TrainingSet) -> None:
        """Per-axis mean and std of phi0 over every training pair (the paper: "on the training set")."""
        n = len(data.subjects)
        s1 = torch.zeros(3, dtype=torch.float64)
        s2 = torch.zeros(3, dtype=torch.float64)
        count = 0
        for i in range(n):
            m = to_net(data.images([i], "moving"), self.cfg.axes).to(self.device) * 2 - 1
            f = to_net(data.images([i], "fixed"), self.cfg.axes).to(self.device) * 2 - 1
            phi = self.phi0(self.nets, m, f).double().cpu()
            s1 += phi.sum(dim=(0, 2, 3, 4))
            s2 += (phi ** 2).sum(dim=(0, 2, 3, 4))
            count += phi[0, 0].numel()
        mean = s1 / count
        std = (s2 / count - mean ** 2).clamp_min(1e-12).sqrt()
        st = self.nets["field_stats"]
        st.mean.copy_(mean.float().view_as(st.mean))
        st.std.copy_(std.float().view_as(st.std))
        print(f"[train {self.name}] phi0 per-axis mean {[round(v, 4) for v in mean.tolist()]}, "
              f"std {[round(v, 4) for v in std.tolist()]} over {n} training pairs", flush=True)
        self._stats_ready = True

    # ------------------------------------------------------------------ training
    def q_sample(self, x0, t, noise):
        a = self.abar.to(x0.device)[t].view(-1, 1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def condition(self, m: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return joint_zscore(m, f) if self.cfg.image_norm == "joint_zscore" else torch.cat([m, f], 1)

    def loss_terms(self, nets, moving: torch.Tensor, fixed: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss of Eq. 3 for images in [0, 1] (B, 1, D, H, W)."""
        c = self.cfg
        m, f = to_net(moving, c.axes) * 2 - 1, to_net(fixed, c.axes) * 2 - 1     # all in the networks' layout
        st = nets["field_stats"]
        b = m.shape[0]
        if c.use_phi0:
            x0 = (self.phi0(nets, m, f) - st.mean) / st.std
        else:
            x0 = torch.randn(b, 3, *m.shape[2:], device=m.device)
        t = torch.randint(0, c.diffusion_steps, (b,), device=m.device)
        noise = torch.randn_like(x0)
        x_t = self.q_sample(x0, t, noise)
        eps = nets["denoiser"](torch.cat([self.condition(m, f), x_t], 1), t)
        a = self.abar.to(m.device)[t].view(-1, 1, 1, 1, 1)
        flow = (x_t - (1 - a).sqrt() * eps) / a.sqrt() * st.std + st.mean
        diff = F.mse_loss(eps, noise)
        terms = {"diff": diff}
        total = (c.lambda_diff * diff) if c.use_phi0 else 0.0 * diff
        if c.lambda_sim or not c.use_phi0:
            sim = ssim_loss_reflect(zero_padded_warp(m, flow), f, c.ssim_window, c.ssim_sigma)
            total = total + (c.lambda_sim or 1.0) * sim
            terms["sim"] = sim
        if c.lambda_reg:
            reg = grad_l2(flow)
            total = total + c.lambda_reg * reg
            terms["reg"] = reg
        return {"loss": total, **terms}

    def objective(self, data: TrainingSet) -> Objective:
        if not self._stats_ready:
            self.fit_field_stats(data)
        return DiffuseRegObjective(self)

    # ------------------------------------------------------------------ sampling
    def timesteps_for(self) -> list[int]:
        c = self.cfg
        if c.sampling == "ddpm":
            return list(range(c.diffusion_steps - 1, -1, -1))
        self.ddim.set_timesteps(c.steps())
        return [int(t) for t in self.ddim.timesteps]

    def step(self, eps, t: int, x, generator):
        """One reverse step (diffusers), noise drawn from `generator` on the CPU: (x_{t-1}, x0_hat)."""
        x_cpu, eps_cpu = x.cpu(), eps.cpu()
        if self.cfg.sampling == "ddpm":
            out = self.ddpm.step(eps_cpu, t, x_cpu, generator=generator)
        else:
            out = self.ddim.step(eps_cpu, t, x_cpu, eta=self.cfg.eta, generator=generator)
        return out.prev_sample.to(x.device), out.pred_original_sample.to(x.device)

    def save_points(self, n: int) -> list[int]:
        steps = self.cfg.save_steps or [int(round(k * n / 10)) for k in range(11)]
        return sorted({min(max(int(s), 0), n) for s in steps} | {n})

    @torch.no_grad()
    def sample(self, moving: torch.Tensor, fixed: torch.Tensor, generator: torch.Generator | None = None):
        """Fields (voxels, (B, 3, X, Y, Z)) after each saved step, and the step counts: x_T ~ N(0, I) -> x_0."""
        c = self.cfg
        net, st = self.nets["denoiser"].eval(), self.nets["field_stats"]
        m, f = to_net(moving, c.axes).to(self.device) * 2 - 1, to_net(fixed, c.axes).to(self.device) * 2 - 1
        cond = self.condition(m, f)
        gen = generator if generator is not None else torch.Generator().manual_seed(c.seed)
        x = torch.randn((m.shape[0], 3, *m.shape[2:]), generator=gen).to(self.device)
        times = self.timesteps_for()
        keep = self.save_points(len(times))
        saved, counts = [], []
        if 0 in keep:
            saved.append(field_from_net(x * st.std + st.mean, c.axes))
            counts.append(0)
        for k, t in enumerate(times, start=1):
            tt = torch.full((m.shape[0],), t, device=self.device, dtype=torch.long)
            x, x0 = self.step(net(torch.cat([cond, x], 1), tt), t, x, gen)
            if k in keep:
                # the last step's x is the sample itself; before it, x0_hat or x_t (`trajectory`)
                shown = x if (k == len(times) or c.trajectory == "xt") else x0
                saved.append(field_from_net(shown * st.std + st.mean, c.axes))
                counts.append(k)
        return saved, counts

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        fields, counts = self.sample(moving, fixed, generator)
        n = counts[-1]
        # numbered as the trajectory's disp_step<k> files (k-th saved step; its time is counts[k] / n)
        images = {f"warped_step{k}": zero_padded_warp(moving.to(self.device), u).cpu()
                  for k, u in enumerate(fields)}
        return RegistrationResult(fields[-1].cpu(), [u.cpu() for u in fields], images,
                                  [k / n for k in counts])
