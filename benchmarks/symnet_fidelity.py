"""SYMNet against its official code, on identical weights and inputs.

    python benchmarks/symnet_fidelity.py --symnet /path/to/Fast-Symmetric-Diffeomorphic-...-Networks \
        [--write-fixtures tests/fixtures/symnet] [--json out.json]

Imports `Models` and `Functions` from the checkout's Code/ folder (github.com/cwmok/Fast-Symmetric-
Diffeomorphic-Image-Registration-with-Convolutional-Neural-Networks), never part of diffreg. The
official code is 3D with batch 1 (its transforms index [0, ...]). Prints:
  - the network: the released Model/SYMNet_neurite_oasis_smo30_update_80000.pth (start_channel 7)
    loads strictly into ours when present; parameter counts 2D / 3D at the default width;
  - on random weights (small width) and random images: v_XY, v_YX (official units), phi_XY, phi_YX
    (voxels) for integration "full" (the code as released) and "half" (the paper: the code with
    DiffeomorphicTransform(time_step=T-1) on v/2, as its README describes), largest differences;
  - the training loss terms of Train_sym_onepass.py (its lines, on the official functions), with
    lambda_jdet = 100 (the code's) and window 7, against `SYMNet.terms`.
With --write-fixtures it writes what tests/unit/test_symnet.py checks without the official code.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from random_weights import seeded  # noqa: E402  (benchmarks/)
from diffreg.methods import build_method  # noqa: E402
from diffreg.nets.symnet import SYMNetUNet, to_voxels  # noqa: E402

SMALL = 2                          # start_channel of the random-weight comparison
SHAPE = (1, 1, 16, 32, 32)         # anisotropic, so that an axis-order slip shows
SEEDS = (11, 12, 13)               # weights, X, Y
RANGE = 100.0
CPU = torch.device("cpu")



def randomise(module, seed, head_scale=0.06):
    """Uniform weights; the two output convolutions scaled so that range_flow x softsign gives
    fields of a few voxels (unscaled, every sample falls outside the grid)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_((torch.rand(p.shape, generator=g) - 0.5) * (0.4 if p.ndim > 1 else 0.2))
            if name.startswith(("dc9", "dc10")):
                p.mul_(head_scale)


def load_official(root: Path):
    sys.path.insert(0, str(root / "Code"))
    import Functions
    import Models
    return Models, Functions


def official_pass(M, F, net, x, y, steps, half, lambdas):
    """Train_sym_onepass.py's forward and loss, line by line, on the official modules."""
    grid = torch.from_numpy(F.generate_grid(x.shape[2:])).float()[None]
    diff = M.DiffeomorphicTransform(time_step=steps - 1 if half else steps)
    scale = 0.5 if half else 1.0            # half: exp(v/2) = the code with time_step - 1 on v/2
    transform, compose = M.SpatialTransform(), M.CompositionTransform()
    f_xy, f_yx = net(x, y)
    h_xy, h_yx = diff(scale * f_xy, grid, RANGE), diff(scale * f_yx, grid, RANGE)
    hi_xy, hi_yx = diff(-scale * f_xy, grid, RANGE), diff(-scale * f_yx, grid, RANGE)
    x_half = transform(x, h_xy.permute(0, 2, 3, 4, 1) * RANGE, grid)
    y_half = transform(y, h_yx.permute(0, 2, 3, 4, 1) * RANGE, grid)
    p_xy, p_yx = compose(h_xy, hi_yx, grid, RANGE), compose(h_yx, hi_xy, grid, RANGE)
    x_y = transform(x, p_xy.permute(0, 2, 3, 4, 1) * RANGE, grid)
    y_x = transform(y, p_yx.permute(0, 2, 3, 4, 1) * RANGE, grid)
    ncc = M.NCC(win=7)
    t = dict(sim_mid=ncc(x_half, y_half), sim_full=ncc(y, x_y) + ncc(x, y_x),
             magnitude=M.magnitude_loss(h_xy * RANGE, h_yx * RANGE),
             jdet=M.neg_Jdet_loss(p_xy.permute(0, 2, 3, 4, 1) * RANGE, grid)
             + M.neg_Jdet_loss(p_yx.permute(0, 2, 3, 4, 1) * RANGE, grid),
             smooth=M.smoothloss(f_xy * RANGE) + M.smoothloss(f_yx * RANGE))
    t["loss"] = (t["sim_mid"] + t["sim_full"] + lambdas["lambda_mag"] * t["magnitude"]
                 + lambdas["lambda_jdet"] * t["jdet"] + lambdas["lambda_reg"] * t["smooth"])
    return dict(v_xy=f_xy, v_yx=f_yx, phi_xy=to_voxels(p_xy, RANGE), phi_yx=to_voxels(p_yx, RANGE)), \
        {k: v.item() for k, v in t.items()}


def compare(M, F, integration, dtype, report, fixture):
    """float32: as both codes run; float64: the same computations without float32 rounding, which
    seven compositions of grid samples (normalised by different formulas) amplify to ~1e-5 voxels."""
    lambdas = dict(lambda_jdet=100.0, lambda_reg=3.0, lambda_mag=0.1)        # the code's defaults (--smooth 3)
    off_net = M.SYMNet(2, 3, SMALL)
    randomise(off_net, SEEDS[0])
    state = {k: v.clone() for k, v in off_net.state_dict().items()}
    off_net.to(dtype)
    method = build_method("symnet", 3, dict(start_channel=SMALL, integration=integration, **lambdas), CPU)
    method.nets["net"].to(dtype).load_state_dict(off_net.state_dict(), strict=True)
    x, y = seeded(SHAPE, SEEDS[1]).to(dtype), seeded(SHAPE, SEEDS[2]).to(dtype)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)             # the official NCC window and grids follow it
    with torch.no_grad():
        off, off_terms = official_pass(M, F, off_net, x, y, 7, integration == "half", lambdas)
        mine_v = method.nets["net"](x, y)
        maps = method.maps(method.nets["net"], x, y)
        mine_terms = {k: v.item() for k, v in method.terms(method.nets["net"], x, y).items()}
        disp = method.register(x, y).displacement
    torch.set_default_dtype(default)
    mine = dict(v_xy=mine_v[0], v_yx=mine_v[1], phi_xy=maps["phi_xy"], phi_yx=maps["phi_yx"])
    diffs = {k: (off[k] - mine[k]).abs().max().item() for k in off}
    diffs["register"] = (disp - off["phi_xy"]).abs().max().item()
    rel = {k: abs(off_terms[k] - mine_terms[k]) / max(abs(off_terms[k]), 1e-12) for k in off_terms}
    key = f"{integration}_{str(dtype).split('.')[-1]}"
    report[key] = dict(max_abs_diff=diffs, loss_rel_diff=rel, official_terms=off_terms,
                               ours=mine_terms, phi_max_abs=off["phi_xy"].abs().max().item())
    print(f"{key}: |phi_XY| up to {off['phi_xy'].abs().max().item():.2f} voxels; largest |diff| "
          + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())
          + "; loss terms rel. diff " + ", ".join(f"{k} {v:.2g}" for k, v in rel.items()))
    if fixture is not None and dtype == torch.float64:   # float64 references, stored as float32
        fixture["state"] = state
        fixture[integration] = dict(phi_xy=off["phi_xy"].float(), terms=off_terms, lambdas=lambdas)
        fixture.setdefault("v", dict(v_xy=off["v_xy"].float(), v_yx=off["v_yx"].float()))


def compare_released(M, root: Path, report):
    path = root / "Model" / "SYMNet_neurite_oasis_smo30_update_80000.pth"
    counts = {nd: sum(p.numel() for p in SYMNetUNet(nd, 2, 8).parameters()) for nd in (2, 3)}
    off = sum(p.numel() for p in M.SYMNet(2, 3, 8).parameters())
    report["parameters"] = dict(ours_2d=counts[2], ours_3d=counts[3], official_3d=off)
    print(f"parameters at start_channel 8: ours 2D {counts[2]:,}, 3D {counts[3]:,}; official 3D {off:,}")
    if not path.exists() or path.stat().st_size == 0:
        print(f"{path}: not in the checkout (git LFS or not fetched); strict load of released weights skipped")
        return
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = SYMNetUNet(3, 2, 7)
    net.load_state_dict(state, strict=True)
    report["released_oasis_model"] = dict(strict_load=True, parameters=sum(v.numel() for v in state.values()))
    print(f"released OASIS model ({sum(v.numel() for v in state.values()):,} parameters): strict load ok")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symnet", required=True, type=Path, help="checkout of the official SYMNet repository")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)          # deterministic sums, as in the tests
    M, F = load_official(args.symnet)
    report, fixture = {}, ({} if args.write_fixtures else None)
    compare_released(M, args.symnet, report)
    for dtype in (torch.float32, torch.float64):
        for integration in ("full", "half"):
            compare(M, F, integration, dtype, report, fixture)
    if args.write_fixtures:
        args.write_fixtures.mkdir(parents=True, exist_ok=True)
        fixture.update(start_channel=SMALL, shape=list(SHAPE), seeds=list(SEEDS))
        torch.save(fixture, args.write_fixtures / "symnet_small.pt")
        print(f"fixture written to {args.write_fixtures / 'symnet_small.pt'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
