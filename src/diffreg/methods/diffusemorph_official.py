"""What DiffuseMorph's official code (boahK/DiffuseMorph) does that its paper does not say, each
behind a named setting of the method (docs/diffusemorph.md, "Official-code settings"):

- `init_weights: official`: the weights the official `define_G` starts from (`model/networks.py`,
  `init_weights`): orthogonal convolution / linear weights (gain 1) in the diffusion U-Net,
  N(0, 0.02) ones in the deformation network, zero biases in both; normalisation layers keep
  PyTorch's (the official rule matches BatchNorm2d only, which neither network has).
- `augment: official`: the official training loaders' random flips (`data/util_2D.py`,
  `util_3D.py` `augment`), the same for moving and fixed: in 2D a left-right flip with
  probability 1/2; in 3D a flip of each in-plane axis and a swap of the two, each with
  probability 1/2 (the 8 symmetries of the square in-plane grid, uniformly).
- `load_official_checkpoint`: an official `*_gen_G.pth` (the state dict of its GaussianDiffusion:
  `denoise_fn.*`, `field_fn.*` and the noise schedule's 12 buffers) into our two networks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError

CONV = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
# the buffers GaussianDiffusion.set_new_noise_schedule registers (official diffusion.py)
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
                    "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2")
PREFIXES = {"denoise_fn.": "unet", "field_fn.": "field"}


@torch.no_grad()
def official_init(unet: nn.Module, field: nn.Module) -> None:
    """Re-initialise both networks as the official training does before its first step."""
    for m in unet.modules():
        if isinstance(m, CONV):
            nn.init.orthogonal_(m.weight, gain=1)
            if m.bias is not None:
                m.bias.zero_()
    for m in field.modules():
        if isinstance(m, CONV):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                m.bias.zero_()


def official_flips(moving: torch.Tensor, fixed: torch.Tensor, rng: np.random.Generator,
                   ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The official augmentation of one batch (B, 1, *S), drawn per sample from `rng` (the
    Trainer's seeded generator). 2D: flip of spatial axis 0 (x, left-right in the photographs'
    layout, the official W). 3D: flips of spatial axes 0 and 1, then their swap (the official
    `vflip`, `hflip`, `rot90`), the swap only where the two sides are equal."""
    square = ndim == 3 and moving.shape[2] == moving.shape[3]
    outs_m, outs_f = [], []
    for b in range(moving.shape[0]):
        m, f = moving[b:b + 1], fixed[b:b + 1]
        if ndim == 2:
            draws = [rng.random() < 0.5]
            axes = [2]
        else:
            draws = [rng.random() < 0.5 for _ in range(3)]
            axes = [3, 2]                 # the official order: hflip (W), vflip (H), then the swap
        for flip, ax in zip(draws, axes):
            if flip:
                m, f = m.flip(ax), f.flip(ax)
        if ndim == 3 and draws[2] and square:
            m, f = m.transpose(2, 3), f.transpose(2, 3)
        outs_m.append(m)
        outs_f.append(f)
    return torch.cat(outs_m).contiguous(), torch.cat(outs_f).contiguous()


def split_official_state(state: dict) -> tuple[dict, dict, dict]:
    """(U-Net state, deformation-net state, schedule buffers) of an official `*_gen_G.pth` state
    dict; an InputError for any other key."""
    parts: dict[str, dict] = {"unet": {}, "field": {}}
    schedule, unknown = {}, []
    for key, value in state.items():
        for prefix, net in PREFIXES.items():
            if key.startswith(prefix):
                parts[net][key[len(prefix):]] = value
                break
        else:
            if key in SCHEDULE_BUFFERS:
                schedule[key] = value
            else:
                unknown.append(key)
    if unknown or not parts["unet"] or not parts["field"]:
        raise InputError("not an official DiffuseMorph *_gen_G.pth: "
                         + (f"unknown keys {', '.join(unknown[:5])}" if unknown
                            else "no denoise_fn.* or field_fn.* weights"))
    return parts["unet"], parts["field"], schedule


def load_official_checkpoint(method, source: str | Path | dict) -> dict:
    """Load an official `*_gen_G.pth` (a path or its state dict) into `method`'s two networks,
    each with strict=True. Its betas must be the method's (the schedule the networks were
    trained with). Returns the schedule buffers it carried."""
    state = source if isinstance(source, dict) else torch.load(Path(source), map_location="cpu",
                                                               weights_only=True)
    unet, field, schedule = split_official_state(state)
    if "betas" in schedule:
        ours = method.scheduler.betas.double()
        theirs = schedule["betas"].double().cpu()
        if theirs.shape != ours.shape or (theirs - ours).abs().max().item() > 1e-7:
            raise InputError(f"official checkpoint: its {theirs.numel()} betas "
                             f"({theirs[0].item():.3g} .. {theirs[-1].item():.3g}) are not this "
                             f"method's ({method.cfg.timesteps}: {method.cfg.beta_start:g} .. {method.cfg.beta_end:g})")
    try:
        method.nets["unet"].load_state_dict(unet, strict=True)
        method.nets["field"].load_state_dict(field, strict=True)
    except RuntimeError as e:
        raise InputError(f"official checkpoint does not fit network {method.cfg.network!r} "
                         f"(unet_kwargs / field_kwargs): {str(e).splitlines()[0]}") from e
    return schedule
