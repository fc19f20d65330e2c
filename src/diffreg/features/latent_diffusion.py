"""LDM-Morph's latent diffusion model: a VQ autoencoder (`nets.vq_autoencoder`) and the LDM
U-Net (`nets.adm.ADMUNet` in the latent-diffusion configuration), frozen, as the registration
network's feature extractor and as the encoder E of the latent loss.

Features of a pair (M, F) as the official ``train.py:182-196`` computes them: latents
z = quant_conv(encoder(x)) of the images in [0, 1] (not quantised, scale factor 1), one forward
diffusion step ``q_sample`` at t = 1 with the **same** noise for both latents, one U-Net pass
each, and the outputs of encoder blocks {0, 2}, {3, 5}, {6, 8}, {9, 11} concatenated as
[M_a, M_b, F_a, F_b] per level (256, 384, 640, 896 channels at 1/4 .. 1/32 of the image).

``inversion="ddim"``: the paper's wording (Sec. 3.2: "the diffusion processes using DDIM
inversion with t steps"): deterministic DDIM inversion of each latent over timesteps 0 .. t
(eps predicted by the U-Net, no noise), then the same feature pass at t.

The noise schedule is the code's "linear" one, the square of a linspace over square roots
(``ldm/modules/diffusionmodules/util.py:21-25``), i.e. diffusers' ``scaled_linear`` from 0.0015
to 0.0195 over T = 1000 steps, computed in float64 as the code does.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from diffreg.errors import InputError
from diffreg.nets.adm import ADMConfig, ADMUNet
from diffreg.nets.vq_autoencoder import OFFICIAL_VQ, VQAutoencoder, VQConfig

T_STEPS = 1000
BETA_START, BETA_END = 0.0015, 0.0195
# LDM-Morph configs/latent-diffusion/*-ldm-vq16-64ch.yaml: in 1, 64 ch, mult 1,2,3,4, 2 res blocks,
# attention at ds 2, 4, 8, 32 channels per head, no scale-shift norm, conv resampling
OFFICIAL_UNET = ADMConfig(in_channels=1, model_channels=64, out_channels=1, num_res_blocks=2,
                          channel_mult=(1, 2, 3, 4), attention_ds=(2, 4, 8), num_head_channels=32,
                          use_scale_shift_norm=False, resblock_updown=False)
# the encoder blocks whose outputs make each level's features (train.py:192-195), and t (t_enc)
FEATURE_BLOCKS = ((0, 2), (3, 5), (6, 8), (9, 11))
FEATURE_T = 1
INVERSIONS = ("q_sample", "ddim")


def scaled_linear_alphas_cumprod(steps: int = T_STEPS, start: float = BETA_START, end: float = BETA_END) -> torch.Tensor:
    """abar_t of the code's "linear" schedule: betas = linspace(sqrt(start), sqrt(end), T)^2 in float64."""
    betas = torch.linspace(start ** 0.5, end ** 0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def unet_config(width: int = 64, head_channels: int = 32, groups: int = 32) -> ADMConfig:
    """The official LDM U-Net layout at another width (the test profiles' small U-Net)."""
    return ADMConfig(**{**OFFICIAL_UNET.__dict__, "model_channels": width, "num_head_channels": head_channels,
                        "num_groups": groups})


def encoder_block_outputs(unet: ADMUNet, z: torch.Tensor, t, upto: int | None = None) -> list[torch.Tensor]:
    """Outputs of the U-Net's input blocks 0 .. upto (all by default) for z at timestep t, in one pass."""
    emb = unet._embed(t, z.shape[0], z.device)
    upto = len(unet.input_blocks) - 1 if upto is None else upto
    outs, h = [], z
    for block in unet.input_blocks[: upto + 1]:
        h = block(h, emb)
        outs.append(h)
    return outs


def feature_channels(unet: ADMConfig | ADMUNet, blocks=FEATURE_BLOCKS) -> tuple[int, ...]:
    """Channels of each level's features of a pair (two blocks of two images)."""
    model = unet if isinstance(unet, ADMUNet) else ADMUNet(unet)
    return tuple(2 * (model.blocks[a].channels + model.blocks[b].channels) for a, b in blocks)


class LatentDiffusion(nn.Module):
    """The frozen VQ autoencoder and LDM U-Net; `features(moving, fixed)` and `encode(x)`."""

    def __init__(self, vq: VQAutoencoder, unet: ADMUNet, t: int = FEATURE_T, inversion: str = "q_sample",
                 blocks: Sequence[Sequence[int]] = FEATURE_BLOCKS):
        super().__init__()
        if inversion not in INVERSIONS:
            raise ValueError(f"inversion must be one of {INVERSIONS}, got {inversion!r}")
        if not 0 <= t < T_STEPS:
            raise ValueError(f"timestep {t} outside 0..{T_STEPS - 1}")
        if unet.config.in_channels != vq.config.embed_dim:
            raise ValueError(f"U-Net takes {unet.config.in_channels} channels, the latent has {vq.config.embed_dim}")
        self.vq, self.unet = vq, unet
        self.t, self.inversion, self.blocks = t, inversion, tuple(tuple(b) for b in blocks)
        self.register_buffer("alphas_cumprod", scaled_linear_alphas_cumprod().float(), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)          # frozen: always eval

    @property
    def factor(self) -> int:
        return self.vq.config.factor

    @property
    def multiple(self) -> int:
        """Image sizes must be multiples of this (the VQ factor times the U-Net's deepest encoder stride)."""
        return self.factor * self.unet.blocks[max(max(b) for b in self.blocks)].stride

    @property
    def channels(self) -> tuple[int, ...]:
        return feature_channels(self.unet, self.blocks)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): the latent (not quantised) of images (B, 1, H, W) in [0, 1]; differentiable in x."""
        return self.vq.encode(x)

    def q_sample(self, z: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        abar = self.alphas_cumprod[t]
        return abar.sqrt() * z + (1 - abar).sqrt() * noise

    def ddim_invert(self, z: torch.Tensor, t: int) -> torch.Tensor:
        """Deterministic DDIM inversion of a clean latent over timesteps 0 .. t."""
        abar_prev = torch.ones((), dtype=z.dtype, device=z.device)
        x, s_prev = z, 0
        for s in range(t + 1):
            eps = self.unet(x, torch.full((x.shape[0],), s_prev, device=x.device))
            x0 = (x - (1 - abar_prev).sqrt() * eps) / abar_prev.sqrt()
            abar = self.alphas_cumprod[s]
            x = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
            abar_prev, s_prev = abar, s
        return x

    def noisy_latents(self, zm: torch.Tensor, zf: torch.Tensor,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.inversion == "ddim":
            return self.ddim_invert(zm, self.t), self.ddim_invert(zf, self.t)
        noise = torch.randn(zm.shape, generator=generator, device=zm.device if generator is None else generator.device,
                            dtype=zm.dtype).to(zm.device)
        return self.q_sample(zm, self.t, noise), self.q_sample(zf, self.t, noise)   # the same noise (code)

    @torch.no_grad()
    def features(self, moving: torch.Tensor, fixed: torch.Tensor, generator: torch.Generator | None = None,
                 return_latents: bool = False):
        """The four feature maps of the pair (B, C_i, H / 2^(i+2), W / 2^(i+2)); with
        `return_latents`, also the clean latents E(moving), E(fixed) (the latent loss reuses E(fixed))."""
        if any(n % self.multiple for n in moving.shape[2:]):
            raise ValueError(f"LDM features need H and W multiples of {self.multiple}, got {tuple(moving.shape[2:])}")
        n = moving.shape[0]
        z = self.encode(torch.cat([moving, fixed]))           # one encoder pass for both images
        zm, zf = z[:n], z[n:]
        xm, xf = self.noisy_latents(zm, zf, generator)
        last = max(max(b) for b in self.blocks)
        both = encoder_block_outputs(self.unet, torch.cat([xm, xf]), self.t, last)
        feats = [torch.cat([both[a][:n], both[b][:n], both[a][n:], both[b][n:]], 1) for a, b in self.blocks]
        return (feats, zm, zf) if return_latents else feats

    # ---------------------------------------------------------------- files

    def checkpoint_dict(self, pretrain: dict | None = None) -> dict:
        return {"format": "diffreg-ldm-morph-1", "vq_config": self.vq.config.to_dict(),
                "unet_config": self.unet.config.to_dict(),
                "vq_state": self.vq.state_dict(), "unet_state": self.unet.state_dict(), "pretrain": pretrain or {}}


def load_latent_diffusion(path, t: int = FEATURE_T, inversion: str = "q_sample") -> LatentDiffusion:
    """A file of the pretraining stage `ldm_morph_latent_diffusion`, or an official LDM-Morph
    latent-diffusion checkpoint (Lightning: ``state_dict`` with ``first_stage_model.*`` and
    ``model.diffusion_model.*``, the official configurations), loaded strictly."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: latent diffusion checkpoint not found") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: not a PyTorch checkpoint of weights ({type(exc).__name__}: {first[:200]})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: not a latent diffusion checkpoint")
    if "vq_state" in obj:
        vq = VQAutoencoder(VQConfig.from_dict(obj["vq_config"]))
        unet = ADMUNet(ADMConfig.from_dict(obj["unet_config"]))
        vq_state, unet_state = obj["vq_state"], obj["unet_state"]
    else:
        sd = obj.get("state_dict", obj)
        vq_state = {k[len("first_stage_model."):]: v for k, v in sd.items() if k.startswith("first_stage_model.")}
        unet_state = {k[len("model.diffusion_model."):]: v for k, v in sd.items()
                      if k.startswith("model.diffusion_model.")}
        if not vq_state or not unet_state:
            raise InputError(f"{path}: neither a diffreg latent diffusion file nor an official LDM checkpoint "
                             "(no first_stage_model.* / model.diffusion_model.* weights)")
        vq_state = {k: v for k, v in vq_state.items() if not k.startswith("loss.")}
        vq, unet = VQAutoencoder(OFFICIAL_VQ), ADMUNet(OFFICIAL_UNET)
    try:
        vq.load_state_dict(vq_state, strict=True)
        unet.load_state_dict(unet_state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not fit the latent diffusion model: {str(exc)[:300]}") from None
    return LatentDiffusion(vq, unet, t=t, inversion=inversion)
