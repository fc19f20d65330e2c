"""`diffreg register`: register one pair with a trained model, in the project's field convention:
disp.nii.gz and warped.nii.gz, and what a sampling method shows besides (methods.RegistrationResult):
disp_step<k>.nii.gz for its trajectory, <name>.nii.gz for its images."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import spatial
from ..device import resolve_device, seed_everything, set_threads, synchronize
from ..errors import InputError
from ..io import RunManifest, load_json_object, read_image, read_labels, write_field, write_image
from ..methods import load_method
from ..training.config import check_seed
from ..training.trainer import TrainingDiverged

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


def check_field(disp: torch.Tensor, model: str, moving: str) -> None:
    """TrainingDiverged (exit 65) for a NaN/Inf displacement, or one beyond 100 image sides (no
    voxel can come from there: the model diverged); nothing is written then."""
    finite = torch.isfinite(disp)
    if not bool(finite.all()):
        n = int((~finite).sum())
        raise TrainingDiverged(f"{moving}: model {model} gave a displacement with {n} NaN or Inf value(s) "
                               "(a diverged model?); nothing written")
    size = max(disp.shape[2:])
    peak = float(disp.abs().max())
    if peak > 100 * size:
        raise TrainingDiverged(f"{moving}: model {model} gave a displacement of {peak:.3g} voxels, over 100 "
                               f"times the image size {size} (a diverged model?); nothing written")


def _load_model(model: str, device: torch.device):
    """load_method, with every way a folder is not a trained model as one InputError line."""
    folder = Path(model)
    if not folder.is_dir():
        raise InputError(f"--model {model}: not a folder (give the model folder written by `diffreg train`)")
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise InputError(f"{model}: not a trained model folder (config.json missing)")
    desc = load_json_object(cfg, "model description")
    missing = [k for k in ("method", "ndim", "config") if k not in desc]
    if missing:
        raise InputError(f"{cfg}: not a model description of `diffreg train` (no {', '.join(missing)})")
    if not (folder / "model.pt").is_file():
        raise InputError(f"{model}: not a trained model folder (model.pt missing)")
    import zipfile
    if not zipfile.is_zipfile(folder / "model.pt"):  # torch.save writes a zip archive
        raise InputError(f"{folder / 'model.pt'}: not a PyTorch checkpoint (no zip archive: truncated or another file)")
    try:
        return load_method(folder, device)
    except InputError:
        raise
    except Exception as exc:  # a truncated or foreign model.pt, weights of another network
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{folder / 'model.pt'}: not the weights of this model "
                         f"({type(exc).__name__}: {first[:200]})") from None


def run(args) -> int:
    try:
        return _run(args)
    except TrainingDiverged as exc:
        print(f"diffreg: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args) -> int:
    check_seed(args.seed)
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    seed_everything(args.seed)
    manifest = RunManifest("register", vars(args), seed=args.seed, device=str(device))
    moving, _ = read_image(args.moving)
    fixed, affine = read_image(args.fixed)
    if moving.shape != fixed.shape:
        raise InputError(f"{args.moving}: shape {moving.shape} differs from fixed {fixed.shape}")
    method = _load_model(args.model, device)
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
    check_field(disp, args.model, args.moving)

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
                    trajectory_steps=len(result.trajectory),
                    trajectory_times=[float(t) for t in result.trajectory_times] or None, images=sorted(result.images))
    manifest.write(out / "run.json")
    return 0
