"""Diffusion features g(x) = h_n(sqrt(abar_t) x + sqrt(1 - abar_t) eps, t) (DGIR, Eq. 3).

Images in [0, 1] are mapped to [-1, 1] (the range the diffusion model was trained on), grayscale
is repeated to three channels, noised by the forward process at timestep t, and the frozen ADM
U-Net is run up to block n.
"""
from __future__ import annotations

import torch

from diffreg.nets.adm import ADMUNet, load_adm

from .base import FeatureModel, crop_features, pad_to_multiple, to_rgb

T_STEPS = 1000


def linear_alphas_cumprod(steps: int = T_STEPS, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """abar_t of the linear schedule shared by DDPM, guided-diffusion and diffusers'
    DDPMScheduler(beta_schedule="linear"), computed as the latter does (float32 linspace and
    cumprod; the tests check it equals the scheduler's), without importing diffusers here."""
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


class DiffusionFeatures(FeatureModel):
    """Frozen ADM features of block `block` at timestep `t`.

    noise: "shared" draws one noise image per pair and uses it for both images of a pair (the
    paper: identical images give identical features); "independent" draws fresh noise for every
    image (the official code's q_sample(noise=None)). `pair(a, b)` runs a and b in one batch.
    """

    def __init__(self, model: ADMUNet, block: int = 29, t: int = 60, noise: str = "shared"):
        super().__init__()
        if noise not in ("shared", "independent"):
            raise ValueError(f"noise must be 'shared' or 'independent', got {noise!r}")
        if not 0 <= t < T_STEPS:
            raise ValueError(f"timestep {t} outside 0..{T_STEPS - 1}")
        self.model = model.freeze()
        self.block = block
        self.t = t
        self.noise = noise
        self.stride = model.blocks[block].stride
        self.channels = model.blocks[block].channels
        self.multiple = model.required_multiple(block)   # padding only as much as needed
        abar = linear_alphas_cumprod()[t]
        self.register_buffer("sqrt_abar", abar.sqrt(), persistent=False)
        self.register_buffer("sqrt_one_minus_abar", (1 - abar).sqrt(), persistent=False)
        self.freeze()

    def q_sample(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device) if noise is None else noise
        return self.sqrt_abar * x + self.sqrt_one_minus_abar * noise

    def extract(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        x = 2 * to_rgb(x) - 1
        return self.model.features(self.q_sample(x, noise), self.t, self.block)

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of a and b, computed in one stacked batch (B, C, H, W each)."""
        if a.shape != b.shape:
            raise ValueError(f"pair shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.ndim != 4:
            raise ValueError(f"diffusion features take 2D batches (B, C, H, W), got {tuple(a.shape)}")
        x = pad_to_multiple(torch.cat([a, b]), self.multiple)
        noise = torch.randn((a.shape[0], 3, *x.shape[2:]), dtype=x.dtype, device=x.device)
        noise = torch.cat([noise, noise if self.noise == "shared" else torch.randn_like(noise)])
        f = crop_features(self.extract(x, noise), a.shape[2:], self.stride)
        return f[: a.shape[0]], f[a.shape[0]:]

    @classmethod
    def from_checkpoint(cls, path, block: int = 29, t: int = 60, noise: str = "shared") -> "DiffusionFeatures":
        return cls(load_adm(path), block=block, t=t, noise=noise)
