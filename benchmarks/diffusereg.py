"""DiffuseReg: DDIM against DDPM sampling on the cardiac stand-in (time and Dice in one run), and
our denoiser against the official one, per sampling step.

    python benchmarks/diffusereg.py [--model MODEL_DIR] [--iterations 200] [--network small]
        [--size 32] [--ddim-steps 50] [--pairs 2] [--device auto]
        [--official /path/to/DiffuseReg --feature 120 --shape 32 128 128] [--json out.json]

Part 1 (always): a DiffuseReg model (`--model`, a trained diffusereg folder; else trained here:
the VTN stage and `--iterations` iterations on the embedded ACDC stand-in, ES -> ED) registers
the test pairs with DDPM (every one of its T steps, the official sampler) and with DDIM
(`--ddim-steps`, eta 0) from the same seed. Prints seconds per registration, the speed-up, the
overall Dice (mean over RV, Myo, LV cavity and the unions LV + Myo and all structures, as the
paper's "Overall") of each and their difference. Goal at the official size: >= 30x faster and
Dice within 0.01 (the paper: "6.5 min -> 0.5 min without compromising the performance").

Part 2 (with --official): the official SwinUNETR (built as benchmarks/diffusereg_fidelity.py
does) and ours on the same random weights, one denoising step (a forward pass, no gradient) at
`--feature` and `--shape`, median of `--repeats` after one warm-up each, alternating; prints
milliseconds per step and ours / official.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

UNIONS = [[1], [2], [3], [2, 3], [1, 2, 3]]      # RV, Myo, LV cavity, LV + Myo, all (dice_ACDC)


def overall_dice(moving_lab, fixed_lab, disp) -> float:
    from diffreg.spatial import warp

    warped = warp(moving_lab[None, None].long(), disp.cpu(), mode="nearest")[0, 0]
    out = []
    for labels in UNIONS:
        a = torch.isin(warped, torch.tensor(labels))
        b = torch.isin(fixed_lab.long(), torch.tensor(labels))
        denom = a.sum() + b.sum()
        out.append(float(2 * (a & b).sum() / denom) if denom else 1.0)
    return float(np.mean(out))


def standin(size: int, n: int, workdir: Path):
    """ES and ED images ([0, 1]) and labels of the stand-in, subjects split half / half."""
    import nibabel as nib

    from diffreg.data.standins.acdc import AcdcConfig, generate

    generate(workdir, AcdcConfig(n_subjects=n, size=size, slices=8, n_frames=2))
    frames = sorted(workdir.rglob("*_frame01.nii.gz"))
    out = []
    for ed in frames:
        es = Path(str(ed).replace("_frame01", "_frame02"))
        load = lambda p: torch.from_numpy(np.asarray(nib.load(str(p)).dataobj, dtype=np.float32))
        lab = lambda p: load(Path(str(p).replace(".nii.gz", "_gt.nii.gz")))
        # (X, Y, Z) -> (Z, X, Y): the slices axis first, as the official (D, H, W) crops
        img = lambda t: t.permute(2, 0, 1).contiguous()
        out.append((img(load(es)).clamp(0, 1), img(load(ed)).clamp(0, 1), img(lab(es)), img(lab(ed))))
    return out


def train_model(data, iterations: int, network: str, workdir: Path, device: torch.device, steps: int = 2000):
    from diffreg.methods import TrainingSet, build_method
    from diffreg.stages import get_stage

    ts = TrainingSet([f"s{i}" for i in range(len(data))], [d[0].numpy() for d in data], [d[1].numpy() for d in data])
    vtn = workdir / "vtn.pt"
    get_stage("diffusereg_vtn")({"iterations": max(20, iterations), "channels": 8 if network == "small" else 16},
                                vtn, ts, 0, str(device), 0)
    method = build_method("diffusereg", 3, {"phi0": str(vtn), "network": network, "iterations": iterations,
                                            "diffusion_steps": steps, "log_every": max(1, iterations // 5)}, device)
    method.fit(ts)
    return method


def sample_both(method, pairs, ddim_steps: int, seed: int = 0) -> dict:
    from dataclasses import replace

    res = {}
    base = method.cfg
    for name, cfg in (("ddpm", replace(base, sampling="ddpm", sampling_steps=0, save_steps=[0])),
                      ("ddim", replace(base, sampling="ddim", sampling_steps=ddim_steps, eta=0.0, save_steps=[0]))):
        method.cfg = cfg
        times, dice = [], []
        for m, f, ml, fl in pairs:
            method.register(m[None, None], f[None, None], torch.Generator().manual_seed(seed))   # warm-up
            if method.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            r = method.register(m[None, None], f[None, None], torch.Generator().manual_seed(seed))
            if method.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            dice.append(overall_dice(ml, fl, r.displacement))
        res[name] = {"steps": cfg.steps(), "seconds": float(np.mean(times)), "dice_overall": float(np.mean(dice))}
    method.cfg = base
    res["speedup"] = res["ddpm"]["seconds"] / res["ddim"]["seconds"]
    res["dice_difference"] = res["ddim"]["dice_overall"] - res["ddpm"]["dice_overall"]
    return res


def time_denoisers(official_path: Path, feature: int, shape, repeats: int, device: torch.device) -> dict:
    import diffusereg_fidelity as fid

    from diffreg.nets.diffusereg_swin import DiffuseRegSwinUNETR

    fid.install_shims()
    sys.path.insert(0, str(official_path))
    import model.diffusion_3D.swin_unetR as swin_mod

    cfg = dict(fid.SWIN, feature_size=feature)
    official = swin_mod.SwinUNETR(img_size=shape, in_channels=3, out_channels=3, **cfg).eval().to(device)
    ours = DiffuseRegSwinUNETR(**cfg).eval().to(device)
    ours.load_state_dict(official.state_dict(), strict=True)
    x = torch.randn(1, 5, *shape, device=device)
    t = torch.tensor([1000], device=device)
    ms = {"official": [], "ours": []}
    with torch.no_grad():
        for net in (official, ours):
            net(x, t)
        for _ in range(repeats):
            for name, net in (("official", official), ("ours", ours)):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                net(x, t)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                ms[name].append(1000 * (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in ms.items()}
    return {"feature": feature, "shape": list(shape), "ms_per_step": med, "ours_over_official": med["ours"] / med["official"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a trained diffusereg model folder")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--network", default="small", choices=["small", "official"])
    ap.add_argument("--size", type=int, default=32, help="stand-in in-plane size")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--diffusion-steps", type=int, default=2000, help="T of a model trained here")
    ap.add_argument("--official", type=Path, default=None, help="checkout of KUJOYUTA/DiffuseReg (part 2)")
    ap.add_argument("--feature", type=int, default=120)
    ap.add_argument("--shape", type=int, nargs=3, default=[32, 128, 128])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-sampling", action="store_true", help="part 2 only")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from diffreg.device import resolve_device

    device = resolve_device(args.device)
    report: dict = {"device": str(device)}
    if not args.skip_sampling:
        with tempfile.TemporaryDirectory() as tmp:
            data = standin(args.size, args.subjects, Path(tmp))
            half = max(1, len(data) // 2)
            if args.model:
                from diffreg.methods import load_method
                method = load_method(args.model, device)
            else:
                method = train_model(data[:half], args.iterations, args.network, Path(tmp), device,
                                     args.diffusion_steps)
            res = sample_both(method, data[half:][:args.pairs], args.ddim_steps)
        report["sampling"] = res
        print(f"DDPM {res['ddpm']['steps']} steps: {res['ddpm']['seconds']:.2f} s, Dice {res['ddpm']['dice_overall']:.4f}; "
              f"DDIM {res['ddim']['steps']} steps: {res['ddim']['seconds']:.2f} s, Dice {res['ddim']['dice_overall']:.4f}; "
              f"speed-up {res['speedup']:.1f}x, Dice difference {res['dice_difference']:+.4f} ({device})")
    if args.official:
        res = time_denoisers(args.official, args.feature, args.shape, args.repeats, device)
        report["denoiser_step"] = res
        print(f"denoiser step, feature {args.feature}, input {args.shape}: official {res['ms_per_step']['official']:.1f} ms, "
              f"ours {res['ms_per_step']['ours']:.1f} ms, ours / official {res['ours_over_official']:.2f} ({device})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
