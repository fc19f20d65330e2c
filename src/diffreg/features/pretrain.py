"""Pretrain a small ADM U-Net as a DDPM (epsilon prediction, linear schedule, T = 1000) on
natural images: the offline stand-in for guided-diffusion's ImageNet model.

Random crops at random scales (and flips, and an occasional grayscale copy) of the packaged
photographs; forward process by diffusers' DDPMScheduler; loss ||eps - eps_hat||^2 (Ho et al.).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from diffreg.nets.adm import ADMUNet, small_config
from diffreg.training.trainer import check_finite_grads, check_finite_terms

from .natural import DEFAULT_IMAGES, load_natural_images

FORMAT_VERSION = 1   # bump when the training procedure changes, so caches are not reused
PRETRAIN_ADVICE = "lower the stage's lr; no checkpoint written"


@dataclass
class PretrainConfig:
    images: tuple[str, ...] = DEFAULT_IMAGES
    size: int = 64
    width: int = 32
    iterations: int = 2000
    batch: int = 8
    lr: float = 2e-4
    min_scale: float = 0.25     # crops cover between min_scale and 1 of the shorter image side
    gray_prob: float = 0.25
    seed: int = 0

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["images"] = list(self.images)
        return d

    def digest(self) -> str:
        blob = json.dumps({"v": FORMAT_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def random_crops(images: list[torch.Tensor], n: int, size: int, min_scale: float, gray_prob: float,
                 g: torch.Generator) -> torch.Tensor:
    """n crops (n, 3, size, size) in [0, 1]: random image, random square of side s in
    [min_scale, 1] x shorter side, resized to `size`, random horizontal flip and grayscale."""
    out = []
    for _ in range(n):
        img = images[int(torch.randint(len(images), (1,), generator=g))]
        h, w = img.shape[-2:]
        frac = min_scale + (1 - min_scale) * float(torch.rand((), generator=g))
        side = max(size // 2, int(round(frac * min(h, w))))
        side = min(side, h, w)
        y = int(torch.randint(h - side + 1, (1,), generator=g))
        x = int(torch.randint(w - side + 1, (1,), generator=g))
        crop = img[None, :, y:y + side, x:x + side]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        if float(torch.rand((), generator=g)) < 0.5:
            crop = crop.flip(-1)
        if float(torch.rand((), generator=g)) < gray_prob:
            crop = crop.mean(0, keepdim=True).expand(3, -1, -1)
        out.append(crop.clamp(0, 1))
    return torch.stack(out)


def pretrain(cfg: PretrainConfig, device: str = "cpu", log: Callable[[str], None] | None = print,
             log_every: int = 25, log_tag: str = "adm_natural_images") -> tuple[ADMUNet, dict]:
    from diffusers import DDPMScheduler

    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    images = [torch.from_numpy(a) for a in load_natural_images(cfg.images).values()]
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    model = ADMUNet(small_config(cfg.width, num_groups=min(32, cfg.width))).to(device)
    if cfg.size % model.min_multiple:
        raise ValueError(f"crop size {cfg.size} must be divisible by {model.min_multiple}")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    losses, start = [], time.perf_counter()
    for it in range(1, cfg.iterations + 1):
        x0 = 2 * random_crops(images, cfg.batch, cfg.size, cfg.min_scale, cfg.gray_prob, g) - 1
        t = torch.randint(0, 1000, (cfg.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        xt = sched.add_noise(x0, noise, t)
        loss = F.mse_loss(model(xt.to(device), t.to(device)), noise.to(device))
        # the trainer's checks: a NaN reaching backward can crash the process without a message
        values = check_finite_terms(log_tag, it, {"loss": loss}, advice=PRETRAIN_ADVICE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        check_finite_grads(log_tag, it, list(model.parameters()), values, advice=PRETRAIN_ADVICE)
        opt.step()
        losses.append(values["loss"])
        if log and (it % log_every == 0 or it == cfg.iterations):
            rate = it / (time.perf_counter() - start)
            log(f"[{log_tag}] iter {it}/{cfg.iterations} loss {np.mean(losses[-log_every:]):.4f} "
                f"{rate:.2f} it/s")
    k = max(1, len(losses) // 10)
    stats = {"loss_first_10pct": float(np.mean(losses[:k])), "loss_last_10pct": float(np.mean(losses[-k:])),
             "train_time_s": round(time.perf_counter() - start, 2),
             "parameters": sum(p.numel() for p in model.parameters())}
    return model.cpu().freeze(), stats


def checkpoint_dict(model: ADMUNet, cfg: PretrainConfig, stats: dict) -> dict:
    """The file format `nets.adm.load_adm` reads: architecture config + state dict (+ provenance)."""
    return {"config": model.config.to_dict(), "state_dict": model.state_dict(),
            "pretrain": {**cfg.to_dict(), "digest": cfg.digest(), **stats}}
