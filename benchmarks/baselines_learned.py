"""Every learned method of the registry at its default (paper / official) size: parameters,
seconds per training step and per registration, at one 2D and one 3D size, in one table.

    python benchmarks/baselines_learned.py [--sizes 128x128 96x96x96] [--steps 3] [--methods a,b]

A training step is one Trainer iteration (batch 1, the method's objective) after one warm-up
step; a registration is `Method.register` on one pair. Methods that need files (uniGradICON's
weights, DGIR's diffusion features) are timed without them where they can be (uniGradICON:
registration only, random weights, no instance optimisation) or marked. CPU unless CUDA is there.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.errors import InputError  # noqa: E402
from diffreg.experiments import shared_losses  # noqa: E402
from diffreg.features.base import NeedsWeights  # noqa: E402
from diffreg.methods import METHODS, build_method  # noqa: E402
from diffreg.training.training_set import TrainingSet  # noqa: E402

# settings that make a method runnable here without user files
EXTRA = {"dgir": {"loss": "lncc"}, "unigradicon": {"io_iterations": 0}}
# rows that are a registered method with another network: the presets of experiments/baselines.yaml
VARIANTS = {n: (p["method"], {k: v for k, v in p.items() if k not in ("method", "status", "note")})
            for n, p in shared_losses().items() if p.get("backbone")}
for _name in ("uvit", "swin_unet"):   # their papers' sizes (U-ViT-S, Swin-T), not the small CPU defaults
    VARIANTS[_name][1]["backbone_kwargs"] = {"size": "full"}


def smooth_images(shape, n, seed=0):
    from scipy.ndimage import gaussian_filter
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = gaussian_filter(g.random(shape), 2)
        out.append(((a - a.min()) / (a.max() - a.min())).astype(np.float32))
    return out


def measure(name: str, shape: tuple[int, ...], steps: int, device: torch.device) -> dict:
    ndim = len(shape)
    row = {"method": name, "size": "x".join(map(str, shape))}
    registered, settings = VARIANTS.get(name, (name, {}))
    try:
        torch.manual_seed(0)
        method = build_method(registered, ndim, {**EXTRA.get(name, {}), **settings, "iterations": steps + 1,
                                                 "batch_size": 1, "log_every": 10 ** 6}, device)
    except (InputError, ValueError) as exc:
        return {**row, "note": str(exc).split("\n")[0][:90]}
    row["parameters"] = sum(n for n, _ in method.parameter_counts().values())
    imgs = smooth_images(shape, 4)
    data = TrainingSet([f"s{i}" for i in range(2)], imgs[:2], imgs[2:])
    log = Path("/tmp") / f"bench_{name}_{ndim}d.csv"
    try:
        method.fit(data, log)
        if name != "unigradicon":
            import pandas as pd
            el = pd.read_csv(log)["elapsed_s"].to_numpy()
            row["train_step_s"] = float(np.diff(el).mean()) if len(el) > 1 else float(el[0])
    except NeedsWeights:
        row["train_step_s"] = None
        row["note"] = "training needs weights (timed registration with random weights)"
    except (InputError, ValueError, RuntimeError) as exc:
        return {**row, "note": str(exc).split("\n")[0][:90]}
    mov, fix = (torch.from_numpy(a)[None, None] for a in imgs[:2])
    method.register(mov, fix)                                  # warm-up
    t0 = time.perf_counter()
    method.register(mov, fix)
    row["register_s"] = time.perf_counter() - t0
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["128x128", "64x64x64"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--methods", default=None,
                    help="comma-separated (default: every registered method and every network preset of "
                         "experiments/baselines.yaml)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    names = args.methods.split(",") if args.methods else sorted(list(METHODS.names()) + list(VARIANTS))
    rows = []
    for size in args.sizes:
        shape = tuple(int(s) for s in size.split("x"))
        for name in names:
            r = measure(name, shape, args.steps, device)
            rows.append(r)
            print(r, flush=True)
    print(f"\n{device.type.upper()}, {torch.get_num_threads()} threads, batch 1, default (paper/official) sizes\n")
    print("| method | size | parameters | s / training step | s / registration | note |")
    print("|---|---|---|---|---|---|")
    fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    for r in rows:
        print(f"| {r['method']} | {r['size']} | {r.get('parameters', ''):,} | {fmt(r.get('train_step_s'))} | "
              f"{fmt(r.get('register_s'))} | {r.get('note', '')} |" if "parameters" in r else
              f"| {r['method']} | {r['size']} | | | | {r.get('note', '')} |")


if __name__ == "__main__":
    main()
