"""M2M-Reg's cost: time per training step with the scheme and without it, per backbone, and the
official-loss comparison (benchmarks/m2m_fidelity.py) when the official checkout is given.

    python benchmarks/m2m.py [--ndim 2 --size 128] [--steps 5] [--threads 2] [--official /path/to/M2M-Reg]

Without the scheme each backbone trains as its Table 1 comparison row does: GradICON (method
`gradicon`: phi_AB and phi_BA, LNCC both ways, GradICON), TransMorph / CorrMLP (method `voxelmorph`:
one field, LNCC, diffusion). With it (method `m2m_reg`, the rows' settings): five network calls per
sample (four with a pre-aligned bridge), four composed warps, GradICON or the map gradient, and
GradCyCon. Both on the same networks at the paper's widths, batch 1, random smooth images; a step =
sampling, loss, backward, Adam step; the first step (warm-up) is not timed. Prints seconds per step
and the ratio with / without.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from diffreg.methods import TrainingSet, build_method  # noqa: E402
from diffreg.training.trainer import to_device, trainable_parameters  # noqa: E402

ICON_LNCC = {"window": "gaussian", "sigma": 5.0, "size": 21, "border": "zeros", "eps": 1e-5, "eps_form": "relu"}
WITHOUT = {   # the Table 1 comparison rows (experiments/m2m_reg.yaml presets *_m2m_base)
    "gradicon": ("gradicon", {"lambda_reg": 1.5, "icon_loss": "sparse"}),
    "transmorph": ("voxelmorph", {"backbone": "transmorph", "similarity": "lncc", "similarity_kwargs": ICON_LNCC,
                                  "regulariser": "diffusion", "lambda_reg": 0.062}),
    "corrmlp": ("voxelmorph", {"backbone": "corrmlp", "similarity": "lncc", "similarity_kwargs": ICON_LNCC,
                               "regulariser": "diffusion", "lambda_reg": 0.062}),
}
WITH = {   # the Table 1 M2M-Reg rows (L_m2m + L_gcc)
    "gradicon": {"backbone": "gradicon", "lambda_reg": 0.5, "lambda_gcc": 0.1},
    "transmorph": {"backbone": "transmorph", "lambda_reg": 0.01, "lambda_gcc": 1.0},
    "corrmlp": {"backbone": "corrmlp", "lambda_reg": 0.01, "lambda_gcc": 1.0},
}


def training_set(ndim: int, size: int, n: int = 6) -> TrainingSet:
    g = torch.Generator().manual_seed(0)
    pool = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    x = pool(torch.rand(n, 1, *[size] * ndim, generator=g), 5, 1, 2)[:, 0].numpy()
    return TrainingSet([f"s{i}" for i in range(n)], list(x), list(1 - x))


def seconds_per_step(method, data: TrainingSet, steps: int) -> float:
    nets = method.nets.train()
    objective = method.objective(data)
    opt = torch.optim.Adam(trainable_parameters(nets), lr=1e-5)
    rng = np.random.default_rng(0)
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        batch = to_device(objective.sample(data, rng, 1), method.device)
        loss = objective(nets, batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if k:                                   # the first step warms up
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ndim", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backbones", default="gradicon,transmorph,corrmlp")
    ap.add_argument("--official", type=Path, default=None, help="checkout of MICV-yonsei/M2M-Reg")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    data = training_set(args.ndim, args.size)
    report = {"ndim": args.ndim, "size": args.size, "threads": args.threads, "steps": args.steps}
    for backbone in args.backbones.split(","):
        name, cfg = WITHOUT[backbone]
        torch.manual_seed(0)
        plain = build_method(name, args.ndim, {**cfg, "batch_size": 1}, device)
        torch.manual_seed(0)
        m2m = build_method("m2m_reg", args.ndim, {**WITH[backbone], "batch_size": 1}, device)
        without = seconds_per_step(plain, data, args.steps)
        with_ = seconds_per_step(m2m, data, args.steps)
        params = sum(p.numel() for p in m2m.nets.parameters())
        report[backbone] = {"without_s": without, "with_s": with_, "ratio": with_ / without, "parameters": params}
        print(f"{backbone} ({params:,} parameters, {args.ndim}D {args.size}, batch 1, {args.threads} threads): "
              f"{without:.3f} s/step without M2M-Reg, {with_:.3f} s/step with it: x{with_ / without:.2f}", flush=True)
    if args.official:
        import m2m_fidelity
        report["official_max_abs_diff"] = m2m_fidelity.main(["--official", str(args.official)])
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
