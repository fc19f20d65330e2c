"""Stage kind `ldm_morph_latent_diffusion`: LDM-Morph's latent diffusion model trained on the
study's training images (both frames of every training subject), in two steps through the one
Trainer (seeded sampling, finite checks, checkpoints that resume a killed stage):

1. the VQ autoencoder (`nets.vq_autoencoder`, f = 4, one latent channel): L1 reconstruction plus
   the codebook / commitment loss (beta 0.25). The official recipe (taming's
   VQLPIPSWithDiscriminator) adds an LPIPS term (ImageNet VGG weights) and a patch discriminator
   from step 40 001; neither is here (no VGG weights offline; the discriminator would start after
   the last step of every profile) - docs/ldm-morph.md;
2. the LDM U-Net (`nets.adm` in the latent-diffusion layout) as a DDPM on the frozen encoder's
   latents: eps prediction, t uniform in 0..999, the code's schedule (diffusers' scaled_linear
   0.0015..0.0195, `features.latent_diffusion`), loss ||eps - eps_hat||^2 (Eq. 6).

The file (`features.latent_diffusion.load_latent_diffusion` reads it, as it reads the official
checkpoint a user gives instead) is cached under $DIFFREG_CACHE/ldm_morph by the hash of the
settings, the seed and the training images; the Trainer's checkpoints sit beside it.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from diffreg.errors import InputError
from diffreg.io import atomic_path
from diffreg.training.config import RANGES, TrainerConfig

from . import cache
from .registry import check_config, register

KIND = "ldm_morph_latent_diffusion"
FORMAT_VERSION = 1     # bump when the training changes, so caches are not reused
SETTINGS = {
    "vq_width": 128,          # VQ encoder/decoder base channels (official ch 128)
    "codebook": 16384,        # codebook entries (official n_embed 16384)
    "vq_iterations": 20000,   # autoencoder training steps (the paper gives none)
    "vq_batch": 10,           # official autoencoder config: batch 10
    "vq_lr": 9e-5,            # official base_learning_rate 4.5e-6 x batch 10 x accumulate 2 (main.py scaling)
    "unet_width": 64,         # U-Net base channels (official 64)
    "unet_iterations": 20000, # U-Net training steps (the paper gives none)
    "unet_batch": 20,         # official latent-diffusion config: batch 20
    "unet_lr": 2e-5,          # official base_learning_rate 1e-6 x batch 20
    "checkpoint_every": 500,  # Trainer checkpoints (resume) every N steps of either step
}


def _check(config: dict) -> dict:
    s = check_config(KIND, config)
    for key in ("vq_width", "unet_width"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 8 or v % 8:
            raise InputError(f"{KIND}: {key} {v!r} must be an integer >= 8 and a multiple of 8")
    for key in ("codebook", "vq_iterations", "vq_batch", "unet_iterations", "unet_batch", "checkpoint_every"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{KIND}: {key} {v!r} must be an integer >= 1")
    ok, what = RANGES["lr"]
    for key in ("vq_lr", "unet_lr"):
        v = s[key]
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, int | float) or not ok(v):
            raise InputError(f"{KIND}: {key} {v!r} must be {what}")
        s[key] = float(v)
    return s


def models(s: dict):
    """The untrained VQ autoencoder and U-Net of a stage's settings (GroupNorm groups and head
    width: the official 32 where the width allows)."""
    # deferred: pulls in torch
    from diffreg.features.latent_diffusion import unet_config
    from diffreg.nets.adm import ADMUNet
    from diffreg.nets.vq_autoencoder import OFFICIAL_VQ, VQAutoencoder, VQConfig

    vq = VQAutoencoder(VQConfig(**{**OFFICIAL_VQ.__dict__, "ch": s["vq_width"], "n_embed": s["codebook"],
                                   "num_groups": math.gcd(32, s["vq_width"])}))
    g = math.gcd(32, s["unet_width"])
    unet = ADMUNet(unet_config(s["unet_width"], head_channels=g, groups=g))
    return vq, unet


def data_digest(data) -> str:
    h = hashlib.sha256()
    for sid, m, f in zip(data.subjects, data.moving, data.fixed):
        h.update(sid.encode())
        h.update(np.ascontiguousarray(m, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(f, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def digest(s: dict, seed: int, data) -> str:
    blob = json.dumps({"v": FORMAT_VERSION, "settings": s, "seed": seed, "data": data_digest(data)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ImagePool:
    """Every training image (both frames of each subject) as one pool of (1, H, W) arrays."""

    def __init__(self, data):
        self.images = [np.asarray(a, dtype=np.float32) for a in list(data.moving) + list(data.fixed)]

    def batch(self, rng: np.random.Generator, n: int):
        import torch
        return torch.from_numpy(np.stack([self.images[int(i)] for i in rng.integers(len(self.images), size=n)])[:, None])


def vq_objective(pool: ImagePool):
    import torch.nn.functional as F

    from diffreg.training.objective import Objective  # deferred: pulls in torch

    class VQObjective(Objective):
        def sample(self, data, rng, batch_size):
            return pool.batch(rng, batch_size)

        def __call__(self, nets, x):
            rec, q_loss = nets["vq"](x)
            rec_loss = F.l1_loss(rec, x)
            return {"loss": rec_loss + q_loss, "reconstruction": rec_loss, "codebook": q_loss}

    return VQObjective()


def ldm_objective(pool: ImagePool, factor: int):
    import torch
    import torch.nn.functional as F

    # deferred: pulls in torch
    from diffreg.features.latent_diffusion import T_STEPS, scaled_linear_alphas_cumprod
    from diffreg.training.objective import Objective

    abar = scaled_linear_alphas_cumprod().float()

    class LDMObjective(Objective):
        def sample(self, data, rng, batch_size):
            x = pool.batch(rng, batch_size)
            t = torch.from_numpy(rng.integers(T_STEPS, size=batch_size))
            noise = torch.from_numpy(rng.standard_normal((batch_size, 1, x.shape[2] // factor, x.shape[3] // factor))
                                     .astype(np.float32))
            return x, t, noise

        def __call__(self, nets, batch):
            x, t, noise = batch
            with torch.no_grad():
                z = nets["vq"].encode(x)
            a = abar.to(z.device)[t].view(-1, 1, 1, 1)
            eps = nets["unet"](a.sqrt() * z + (1 - a).sqrt() * noise.to(z.dtype), t)
            loss = F.mse_loss(eps, noise)
            return {"loss": loss}

    return LDMObjective()


def _fit(name, nets, objective, iterations, batch, lr, seed, device, data, log_path, ckpt_path, every, key):
    # deferred: pulls in torch
    from diffreg.training.checkpoint import Checkpoint
    from diffreg.training.trainer import Trainer

    cfg = TrainerConfig(iterations=iterations, batch_size=batch, lr=lr, seed=seed,
                        log_every=max(1, min(100, iterations // 10)))
    checkpoint = Checkpoint(ckpt_path, every, key)
    stats = Trainer(cfg, device, name).fit(nets, objective, data, log_path, checkpoint)
    checkpoint.remove()
    return stats


@register(KIND, SETTINGS, uses_data=True)
def ldm_morph_latent_diffusion(config: dict, out: Path, data, seed: int, device: str, threads: int) -> dict:
    import torch
    from torch import nn

    # deferred: pulls in torch
    from diffreg.device import resolve_device, set_threads
    from diffreg.features.latent_diffusion import LatentDiffusion
    from diffreg.training.trainer import freeze

    if data is None:
        raise InputError(f"{KIND} trains on the study's training images: give --data-dir and --subjects")
    if len(data.shape) != 2:
        raise InputError(f"{KIND}: LDM-Morph is 2D; the training images are {len(data.shape)}D")
    s = _check(config)
    out = Path(out)
    key = digest(s, seed, data)
    folder = cache.cache_dir("ldm_morph")
    cached = folder / f"ldm-vq{s['vq_width']}-unet{s['unet_width']}-{key}.pt"
    summary = {"config": s, "digest": key, "cache": str(cached), "subjects": len(data.subjects)}
    if cache.fetch(cached, out):
        print(f"[{KIND}] cached: {cached}", flush=True)
        return {**summary, "cached": True}
    dev = resolve_device(device)
    threads = set_threads(threads)
    torch.manual_seed(seed)
    vq, unet = models(s)
    factor = vq.config.factor
    multiple = factor * 8
    if any(n % multiple for n in data.shape):
        raise InputError(f"{KIND}: image sizes must be multiples of {multiple} (VQ factor {factor} x the U-Net's "
                         f"three halvings), got {tuple(data.shape)}; preprocess to e.g. 128 x 128")
    pool = ImagePool(data)
    print(f"[{KIND}] {len(pool.images)} training images {tuple(data.shape)}, VQ width {s['vq_width']}, "
          f"U-Net width {s['unet_width']}, device {dev}, {threads} threads", flush=True)
    vq_nets = nn.ModuleDict({"vq": vq}).to(dev)
    vq_stats = _fit(f"{KIND} vq", vq_nets, vq_objective(pool), s["vq_iterations"], s["vq_batch"], s["vq_lr"],
                    seed, dev, data, out.parent / f"{out.stem}.vq_log.csv", folder / f"{key}-vq.ckpt",
                    s["checkpoint_every"], f"{key}-vq")
    freeze(vq)
    ldm_nets = nn.ModuleDict({"unet": unet, "vq": vq}).to(dev)
    unet_stats = _fit(f"{KIND} unet", ldm_nets, ldm_objective(pool, factor), s["unet_iterations"], s["unet_batch"],
                      s["unet_lr"], seed, dev, data, out.parent / f"{out.stem}.unet_log.csv",
                      folder / f"{key}-unet.ckpt", s["checkpoint_every"], f"{key}-unet")
    model = LatentDiffusion(vq.cpu(), unet.cpu())
    stats = {"vq": vq_stats, "unet": unet_stats,
             "parameters": {"vq": sum(p.numel() for p in vq.parameters()),
                            "unet": sum(p.numel() for p in unet.parameters())}}
    with atomic_path(out) as tmp:
        torch.save(model.checkpoint_dict({**summary, **stats}), tmp)
    cache.store(out, cached)
    return {**summary, "cached": False, "device": str(dev), "threads": threads, **stats}
