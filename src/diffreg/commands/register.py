"""`diffreg register`: register one pair with a trained model, in the project's field convention:
disp.nii.gz and warped.nii.gz, and what a sampling method shows besides (methods.RegistrationResult):
disp_step<k>.nii.gz for its trajectory, <name>.nii.gz for its images.

`--pairs pairs.csv --images-dir DIR` registers every pair of a registration set with the model loaded
once (one pipeline task per set: the interpreter, torch and the weights load once, not per pair),
each into <out>/<name>__<pair>."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import spatial
from ..device import resolve_device, seed_everything, set_threads, synchronize
from ..errors import InputError
from ..io import RunManifest, load_json_object, read_csv_rows, read_image, read_labels, write_field, write_image
from ..methods import load_method
from ..training.config import check_seed
from ..training.trainer import TrainingDiverged

NAME = "register"
HELP = "Register a moving image to a fixed image with a trained model"


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, help="model folder written by `diffreg train`")
    p.add_argument("--moving", default=None, help="moving image (NIfTI); or give --pairs")
    p.add_argument("--fixed", default=None, help="fixed image (NIfTI); or give --pairs")
    p.add_argument("--pairs", default=None, metavar="CSV",
                   help="several pairs instead of --moving/--fixed: columns id, moving, fixed, moving_labels, "
                        "fixed_labels (file names under --images-dir); each goes to <out>/<name>__<id>")
    p.add_argument("--images-dir", default=".", help="folder of the files --pairs names")
    p.add_argument("--moving-labels", default=None, help="moving label map, warped with nearest neighbour")
    p.add_argument("--fixed-labels", default=None, help="fixed label map (recorded for evaluation)")
    p.add_argument("--pair", default=None, help="pair id recorded in run.json")
    p.add_argument("--name", default=None,
                   help="method name recorded in run.json (default: the model's method), e.g. one run of a loss grid")
    p.add_argument("--settings", default=None, metavar="JSON",
                   help="registration-only settings of the model's method (e.g. DiffuseReg's sampling, "
                        "sampling_steps, eta, save_steps, trajectory), applied to the loaded model")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output folder (with --pairs: the folder of the pairs' folders)")


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


def _load_model(model: str, device: torch.device, settings: str | None = None):
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
        inference = load_json_object(settings, "registration settings") if settings else None
        return load_method(folder, device, inference)
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


PAIR_COLUMNS = ("id", "moving", "fixed", "moving_labels", "fixed_labels")


def read_pairs(path: str, images_dir: str) -> list[dict]:
    """The rows of --pairs with their files resolved under --images-dir, or one InputError line."""
    rows = read_csv_rows(path, "--pairs", PAIR_COLUMNS, ("id", "moving", "fixed"), "pairs")
    root = Path(images_dir)
    for n, row in enumerate(rows, start=2):
        for key in PAIR_COLUMNS[1:]:
            name = (row.get(key) or "").strip()
            row[key] = str(root / name) if name else None
            if row[key] and not Path(row[key]).exists():
                raise InputError(f"{path}:{n}: {key} {name} not found under {images_dir}")
        if not row["moving"] or not row["fixed"]:
            raise InputError(f"{path}:{n}: pair {row.get('id')!r} needs a moving and a fixed image")
    return rows


def _run(args) -> int:
    check_seed(args.seed)
    if args.pairs:
        pairs = read_pairs(args.pairs, args.images_dir)
        outs = [Path(args.out) / f"{args.name or Path(args.model).name}__{row['id']}" for row in pairs]
    elif args.moving and args.fixed:
        pairs = [{"id": args.pair, "moving": args.moving, "fixed": args.fixed,
                  "moving_labels": args.moving_labels, "fixed_labels": args.fixed_labels}]
        outs = [Path(args.out)]
    else:
        raise InputError("give --moving and --fixed, or --pairs")
    for row in pairs:   # every image readable and of one shape before the model loads
        moving, fixed = read_image(row["moving"])[0], read_image(row["fixed"])[0]
        if moving.shape != fixed.shape:
            raise InputError(f"{row['moving']}: shape {moving.shape} differs from fixed {fixed.shape}")
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    seed_everything(args.seed)
    method = _load_model(args.model, device, args.settings)
    for k, (row, out) in enumerate(zip(pairs, outs)):
        if len(pairs) > 1:
            print(f"[{k + 1}/{len(pairs)}] {out.name}", flush=True)
        register_pair(method, args, row, out, device, threads, warm_up=k == 0)
    return 0


def register_pair(method, args, row: dict, out: Path, device: torch.device, threads: int, warm_up: bool) -> None:
    """One pair: the model's field checked, then written with the warped image and labels and run.json.
    Seeded per pair, so a pair's result does not depend on the pairs registered before it."""
    seed_everything(args.seed)
    params = {k: v for k, v in vars(args).items() if k not in ("pairs", "images_dir")}
    params.update(pair=row["id"], moving=row["moving"], fixed=row["fixed"], out=str(out),
                  moving_labels=row.get("moving_labels"), fixed_labels=row.get("fixed_labels"))
    manifest = RunManifest("register", params, seed=args.seed, device=str(device))
    moving, _ = read_image(row["moving"])
    fixed, affine = read_image(row["fixed"])     # shapes checked with every pair's before the model loaded
    if moving.ndim != method.ndim:
        raise InputError(f"{row['moving']}: {moving.ndim}D image, model {args.model} is {method.ndim}D")
    m = torch.from_numpy(moving)[None, None].to(device)
    f = torch.from_numpy(fixed)[None, None].to(device)
    def call():
        # a fresh generator, and the global generators seeded too (feature extractors that add noise
        # draw from them): a pair's result depends on --seed alone, not on the pairs or warm-up before it
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(args.seed)
            return method.register(m, f, torch.Generator(device=device).manual_seed(args.seed))

    if warm_up:  # the first pair's warm-up is excluded from its reported runtime (later pairs run warm)
        call()
    synchronize(device)
    t0 = time.perf_counter()
    result = call()
    synchronize(device)
    elapsed = time.perf_counter() - t0
    disp = result.displacement
    check_field(disp, args.model, row["moving"])

    out.mkdir(parents=True, exist_ok=True)
    write_field(out / "disp.nii.gz", disp[0].cpu().numpy(), affine)
    for k, step in enumerate(result.trajectory):
        write_field(out / f"disp_step{k}.nii.gz", step[0].cpu().numpy(), affine)
    for name, image in result.images.items():
        write_image(out / f"{name}.nii.gz", image[0, 0].cpu().numpy().astype(np.float32), affine)
    with torch.no_grad():
        write_image(out / "warped.nii.gz", spatial.warp(m, disp)[0, 0].cpu().numpy().astype(np.float32), affine)
        if row.get("moving_labels"):
            lab, _ = read_labels(row["moving_labels"])
            lab_t = torch.from_numpy(lab.astype(np.float32))[None, None].to(device)
            warped = spatial.warp(lab_t, disp, mode="nearest")[0, 0].cpu().numpy()
            write_image(out / "warped_labels.nii.gz", np.rint(warped).astype(np.int16), affine)
    name_of = lambda key: Path(row[key]).name if row.get(key) else None  # noqa: E731
    manifest.update(method=args.name or method.name, pair=row["id"], moving=name_of("moving"),
                    fixed=name_of("fixed"), moving_labels=name_of("moving_labels"),
                    fixed_labels=name_of("fixed_labels"),
                    register_time_s=round(elapsed, 4), threads=threads,
                    trajectory_steps=len(result.trajectory),
                    trajectory_times=[float(t) for t in result.trajectory_times] or None, images=sorted(result.images))
    manifest.write(out / "run.json")
