"""`diffreg pretrain-diffusion`: train the offline default diffusion feature model for DGIR.

Trains once per configuration: the checkpoint is kept in a cache folder under the hash of the
configuration and copied to --out on later calls.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from diffreg.errors import InputError
from diffreg.io import RunManifest, atomic_path

NAME = "pretrain-diffusion"
HELP = "pretrain a small ADM U-Net (DDPM) on natural images shipped in PyPI packages"


def default_cache() -> Path:
    return Path(os.environ.get("DIFFREG_CACHE", Path.home() / ".cache" / "diffreg")) / "adm"


def add_arguments(p) -> None:
    from diffreg.features.natural import DEFAULT_IMAGES
    p.add_argument("--out", required=True, type=Path, help="checkpoint file to write (run.json goes next to it)")
    p.add_argument("--iterations", type=int, default=2000, help="training iterations")
    p.add_argument("--size", type=int, default=64, help="crop size in pixels (multiple of 32)")
    p.add_argument("--width", type=int, default=32, help="base channel count of the U-Net (official model: 256)")
    p.add_argument("--batch", type=int, default=8, help="crops per iteration")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate")
    p.add_argument("--images", default=",".join(DEFAULT_IMAGES),
                   help="comma-separated natural images (features.natural lists them)")
    p.add_argument("--gray-prob", type=float, default=0.25, help="probability of a grayscale crop")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="cache folder keyed by configuration hash [default: $DIFFREG_CACHE/adm or ~/.cache/diffreg/adm]")
    p.add_argument("--no-cache", action="store_true", help="train even if a cached checkpoint exists")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    p.add_argument("--log-every", type=int, default=25, help="iterations between progress lines")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")


def run(args) -> int:
    from diffreg.features.pretrain import PretrainConfig, checkpoint_dict, pretrain

    if args.iterations < 1 or args.batch < 1:
        raise InputError("--iterations and --batch must be >= 1")
    if args.size < 32 or args.size % 32:
        raise InputError(f"--size {args.size}: must be a positive multiple of 32")
    if args.width < 8 or args.width % 8:
        raise InputError(f"--width {args.width}: must be a positive multiple of 8")
    cfg = PretrainConfig(images=tuple(s for s in args.images.split(",") if s), size=args.size,
                         width=args.width, iterations=args.iterations, batch=args.batch, lr=args.lr,
                         gray_prob=args.gray_prob, seed=args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    manifest = RunManifest(NAME, vars(args) | {"config": cfg.to_dict()}, seed=args.seed, device=device)
    cache = (args.cache_dir or default_cache()) / f"adm-w{cfg.width}-s{cfg.size}-{cfg.digest()}.pt"
    if cache.exists() and not args.no_cache:
        print(f"[pretrain-diffusion] cached: {cache}", flush=True)
        with atomic_path(args.out) as tmp:
            shutil.copyfile(cache, tmp)
        manifest.update(cache=str(cache), cached=True, digest=cfg.digest())
    else:
        from diffreg.features.natural import image_path
        for name in cfg.images:   # fail early, with one line, on an unknown or missing image
            image_path(name)
        print(f"[pretrain-diffusion] width {cfg.width}, crops {cfg.size}, {cfg.iterations} iterations "
              f"on {len(cfg.images)} natural images, device {device}", flush=True)
        model, stats = pretrain(cfg, device=device, log_every=args.log_every)
        ckpt = checkpoint_dict(model, cfg, stats)
        with atomic_path(args.out) as tmp:
            torch.save(ckpt, tmp)
        try:
            with atomic_path(cache) as tmp:
                shutil.copyfile(args.out, tmp)
        except OSError as exc:   # a read-only cache must not fail the run
            print(f"[pretrain-diffusion] cache not written ({exc})", flush=True)
        manifest.update(cache=str(cache), cached=False, digest=cfg.digest(), **stats)
    manifest.write(Path(args.out).parent / "run.json")
    print(f"[pretrain-diffusion] wrote {args.out}", flush=True)
    return 0
