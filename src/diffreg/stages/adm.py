"""Stage kind `adm_natural_images`: a small ADM U-Net trained as a DDPM on natural photographs
shipped in PyPI packages (`features.pretrain`), the offline stand-in for guided-diffusion's
ImageNet model. Trains once per configuration and seed: the checkpoint is cached under
$DIFFREG_CACHE/adm by the hash of both, and later calls copy it."""
from __future__ import annotations

from pathlib import Path

from diffreg.errors import InputError
from diffreg.io import atomic_path
from diffreg.training.config import RANGES

from . import cache
from .registry import check_config, register

KIND = "adm_natural_images"
SETTINGS = {
    "width": 32,          # base channel count of the U-Net (official model: 256), multiple of 8
    "size": 64,           # crop size in pixels, multiple of 32
    "batch": 8,           # crops per iteration
    "iterations": 2000,   # training iterations
    "lr": 2e-4,           # Adam learning rate
    "images": None,       # natural images (list or comma-separated; features.natural) [None: its defaults]
    "gray_prob": 0.25,    # probability of a grayscale crop
}


def _int(s: dict, key: str, low: int, multiple: int = 1) -> int:
    v = s[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < low or v % multiple:
        extra = f" and a multiple of {multiple}" if multiple > 1 else ""
        raise InputError(f"{KIND}: {key} {v!r} must be an integer >= {low}{extra}")
    return v


def _images(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise InputError(f"{KIND}: images must be a list of image names, got {value!r}")
    names = tuple(n.strip() for n in names if n.strip())
    if not names:
        raise InputError(f"{KIND}: images is empty")
    return names


def pretrain_config(config: dict, seed: int):
    """The validated `features.pretrain.PretrainConfig` of a stage config (its digest keys the cache)."""
    # deferred: pulls in torch
    from diffreg.features.natural import image_path
    from diffreg.features.pretrain import PretrainConfig

    s = check_config(KIND, config)
    kw = dict(width=_int(s, "width", 8, 8), size=_int(s, "size", 32, 32), batch=_int(s, "batch", 1),
              iterations=_int(s, "iterations", 1))
    for key in ("lr", "gray_prob"):
        v = s[key]
        # lr: the trainer's range (an lr of 100 diverges at once); NaN fails both comparisons
        ok, what = RANGES["lr"] if key == "lr" else (lambda x: 0 <= x <= 1, "a number in [0, 1]")
        if isinstance(v, bool) or not isinstance(v, int | float) or not ok(v):
            raise InputError(f"{KIND}: {key} {v!r} must be {what}")
        kw[key] = float(v)
    images = _images(s["images"])
    if images is not None:
        kw["images"] = images
    cfg = PretrainConfig(seed=seed, **kw)
    for name in cfg.images:   # fail early, with one line, on an unknown or missing image
        image_path(name)
    return cfg


@register(KIND, SETTINGS)
def adm_natural_images(config: dict, out: Path, data, seed: int, device: str, threads: int) -> dict:
    import torch

    # deferred: pulls in torch
    from diffreg.device import resolve_device, set_threads
    from diffreg.features.pretrain import checkpoint_dict, pretrain

    if data is not None:
        raise InputError(f"{KIND} trains on natural images, not on the study's subjects: give no training data")
    cfg = pretrain_config(config, seed)
    out = Path(out)
    cached = cache.cache_dir("adm") / f"adm-w{cfg.width}-s{cfg.size}-{cfg.digest()}.pt"
    summary = {"config": cfg.to_dict(), "digest": cfg.digest(), "cache": str(cached)}
    if cache.fetch(cached, out):
        print(f"[{KIND}] cached: {cached}", flush=True)
        return {**summary, "cached": True}
    dev = str(resolve_device(device))
    threads = set_threads(threads)
    print(f"[{KIND}] width {cfg.width}, crops {cfg.size}, {cfg.iterations} iterations on "
          f"{len(cfg.images)} natural images, device {dev}, {threads} threads", flush=True)
    model, stats = pretrain(cfg, device=dev)
    with atomic_path(out) as tmp:
        torch.save(checkpoint_dict(model, cfg, stats), tmp)
    cache.store(out, cached)
    return {**summary, "cached": False, "device": dev, "threads": threads, **stats}
