"""`diffreg register`: register one pair with a trained model, in the project's field convention:
disp.nii.gz and warped.nii.gz, and what a sampling method shows besides (methods.RegistrationResult):
disp_step<k>.nii.gz for its trajectory, <name>.nii.gz for its images."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import spatial
from ..device import resolve_device, seed_everything, set_threads, synchronize
from ..errors import InputError
from ..io import RunManifest, read_image, read_labels, write_field, write_image
from ..methods import load_method

NAME = "register"
HELP = "Register a moving image to a fixed image with a trained model"


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, help="model folder written by `diffreg train`")
    p.add_argument("--moving", required=True, help="moving image (NIfTI)")
    p.add_argument("--fixed", required=True, help="fixed image (NIfTI)")
    p.add_argument("--moving-labels", default=None, help="moving label map, warped with nearest neighbour")
    p.add_argument("--fixed-labels", default=None, help="fixed label map (recorded for evaluation)")
    p.add_argument("--pair", default=None, help="pair id recorded in run.json")
    p.add_argument("--name", default=None,
                   help="method name recorded in run.json (default: the model's method), e.g. one run of a loss grid")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output folder")


def run(args) -> int:
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    seed_everything(args.seed)
    manifest = RunManifest("register", vars(args), seed=args.seed, device=str(device))
    moving, _ = read_image(args.moving)
    fixed, affine = read_image(args.fixed)
    if moving.shape != fixed.shape:
        raise InputError(f"{args.moving}: shape {moving.shape} differs from fixed {fixed.shape}")
    method = load_method(args.model, device)
    if moving.ndim != method.ndim:
        raise InputError(f"{args.moving}: {moving.ndim}D image, model {args.model} is {method.ndim}D")
    m = torch.from_numpy(moving)[None, None].to(device)
    f = torch.from_numpy(fixed)[None, None].to(device)
    # a fresh generator per call: sampling methods give the same result for the same --seed
    generator = lambda: torch.Generator(device=device).manual_seed(args.seed)  # noqa: E731
    method.register(m, f, generator())  # warm-up: excluded from the reported runtime
    synchronize(device)
    t0 = time.perf_counter()
    result = method.register(m, f, generator())
    synchronize(device)
    elapsed = time.perf_counter() - t0
    disp = result.displacement

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_field(out / "disp.nii.gz", disp[0].cpu().numpy(), affine)
    for k, step in enumerate(result.trajectory):
        write_field(out / f"disp_step{k}.nii.gz", step[0].cpu().numpy(), affine)
    for name, image in result.images.items():
        write_image(out / f"{name}.nii.gz", image[0, 0].cpu().numpy().astype(np.float32), affine)
    with torch.no_grad():
        write_image(out / "warped.nii.gz", spatial.warp(m, disp)[0, 0].cpu().numpy().astype(np.float32), affine)
        if args.moving_labels:
            lab, _ = read_labels(args.moving_labels)
            lab_t = torch.from_numpy(lab.astype(np.float32))[None, None].to(device)
            warped = spatial.warp(lab_t, disp, mode="nearest")[0, 0].cpu().numpy()
            write_image(out / "warped_labels.nii.gz", np.rint(warped).astype(np.int16), affine)
    manifest.update(method=args.name or method.name, pair=args.pair, moving=Path(args.moving).name,
                    fixed=Path(args.fixed).name,
                    moving_labels=Path(args.moving_labels).name if args.moving_labels else None,
                    fixed_labels=Path(args.fixed_labels).name if args.fixed_labels else None,
                    register_time_s=round(elapsed, 4), threads=threads,
                    trajectory_steps=len(result.trajectory), images=sorted(result.images))
    manifest.write(out / "run.json")
    return 0
