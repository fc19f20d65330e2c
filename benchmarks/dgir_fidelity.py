"""DGIR against the official code (uncbiag/dgir), on identical weights and inputs.

    python benchmarks/dgir_fidelity.py --official /path/to/dgir-checkout [--write-fixtures tests/fixtures/dgir]

The official checkout is imported from its own directory (never part of diffreg); `itk` (imported
by its wrappers for I/O only) and `einops` (its 3D slicing only) are stubbed when not installed.
Prints the largest differences of:
  - tallUNet2 (full size, 2D and 3D): parameter names/shapes, strict load, output on random weights;
  - the whole registration network (3 multiscale levels, DiffusionRegularizedNet's phi_AB);
  - 1 - LNCC on features (official NewLNCC.lncc, eps 1e-6) at the feature sizes of 256 x 256
    images (block 29: 64 x 64) and of 224 x 192 x 160 volumes (block 11 slices: 28 x 24, sigma 5),
    and the pixel LNCC (official losses.LNCC) at 256 x 256 and on a 3D volume;
  - the regulariser (DiffusionRegularizedNet.compute_bending_energy_loss) at 256 x 256 and
    224 x 192 x 160, against our `diffusion_icon` (and the old voxel `diffusion`, for the ratio).
With --write-fixtures it writes the small fixtures tests/unit/test_dgir_fidelity.py checks.
The ADM blocks are checked against guided-diffusion in docs/dgir.md ("The feature model").
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.features.similarity import lncc_window  # noqa: E402
from diffreg.losses.regularisers import Diffusion, DiffusionICON  # noqa: E402
from diffreg.losses.similarity import LNCC  # noqa: E402
from diffreg.nets.tallunet import DGIRNet, TallUNet2  # noqa: E402

SMALL_DOWN = (2, 4, 8, 8, 12, 12)     # the fixture's small tallUNet2 widths
SMALL_UP = (4, 8, 8, 12, 12)


def seeded(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * scale


def seeded_features(shape, seed):
    """Feature-like maps: smooth-ish random values, half the channels nearly flat (variance ~1e-6),
    where the epsilon matters; b = a + noise."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(shape, generator=g)
    a = torch.nn.functional.avg_pool2d(a, 3, 1, 1)
    a[:, shape[1] // 2:] *= 1e-3
    b = a + 0.5 * a.std(dim=(2, 3), keepdim=True) * torch.randn(shape, generator=g)
    return a, b


def randomise(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_((torch.rand(p.shape, generator=g) - 0.5) * (0.4 if p.ndim > 1 else 0.2))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_((torch.rand(b.shape, generator=g) - 0.5) * 0.2)
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))


def load_official(path: Path):
    for name in ("itk", "einops"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    sys.path.insert(0, str(path / "src"))
    sys.path.insert(0, str(path))
    from diffusion_registration.core import losses, networks, wrappers
    return networks, wrappers, losses


def official_net(networks, wrappers, ndim, down=None, up=None, levels=3):
    def unet():
        if down is None:
            return networks.tallUNet2(dimension=ndim)
        return networks.UNet2(len(up), [list(down), list(up)], ndim)
    inner = wrappers.FunctionFromVectorField(unet())
    for _ in range(levels):
        inner = wrappers.TwoStepRegistration(wrappers.DownsampleRegistration(inner, dimension=ndim),
                                             wrappers.FunctionFromVectorField(unet()))
    return inner


def official_map(wrappers, inner, a, b):
    net = wrappers.DiffusionRegularizedNet(inner, None, lmbda=1.0)
    net.assign_identity_map(a.shape)
    net.identity_map.isIdentity = True
    phi = net.regis_net(a, b)
    return phi(net.identity_map)


def compare_unet(networks, ndim, shape, report):
    off = networks.tallUNet2(dimension=ndim)
    ours = TallUNet2(ndim)
    so, sn = off.state_dict(), ours.state_dict()
    same = [(k, tuple(v.shape)) for k, v in so.items()] == [(k, tuple(v.shape)) for k, v in sn.items()]
    randomise(off, 1)
    ours.load_state_dict(off.state_dict(), strict=True)
    off.eval(), ours.eval()
    a, b = seeded((1, 1, *shape), 2), seeded((1, 1, *shape), 3)
    with torch.no_grad():
        d = (off(a, b) - ours(a, b)).abs().max().item()
    n = sum(p.numel() for p in ours.parameters())
    report[f"tallUNet2_{ndim}d"] = dict(parameters=n, names_shapes_equal=same, max_abs_diff=d, input=list(shape))
    print(f"tallUNet2 {ndim}D: {n:,} parameters, names/shapes equal: {same}, strict load ok, "
          f"output max |diff| {d:.3g} at {shape}")


def compare_chain(networks, wrappers, ndim, shape, batch, report, down=None, up=None, key=None):
    off = official_net(networks, wrappers, ndim, down, up)
    ours = DGIRNet(ndim, 3, *((down, up) if down else ()))
    randomise(off, 4)
    ours.net.load_state_dict(off.state_dict(), strict=True)
    off.eval(), ours.eval()
    a, b = seeded((batch, 1, *shape), 5), seeded((batch, 1, *shape), 6)
    with torch.no_grad():
        po = official_map(wrappers, off, a, b)
        pn = ours.map01(a, b)
    d = (po - pn).abs().max().item()
    key = key or f"network_{ndim}d"
    report[key] = dict(max_abs_diff=d, input=[batch, 1, *shape], map_range=float((po.max() - po.min())))
    print(f"registration network {ndim}D ({'official widths' if down is None else 'small widths'}), "
          f"input {[batch, 1, *shape]}: phi_AB max |diff| {d:.3g}")
    return off, ours, a, b, po


def compare_lncc(losses, report):
    out = {}
    for name, shape, sigma in (("features_2d_256", (4, 64, 64, 64), 4), ("features_3d_224x192x160", (8, 64, 28, 24), 5)):
        a, b = seeded_features(shape, 7)
        off = losses.NewLNCC(None, None, sigma, eps=1e-6).lncc(a, b).item()
        ours = 1 - LNCC(**lncc_window(sigma, "zeros", "official")).similarity(a, b).item()
        clamp = 1 - LNCC(**lncc_window(sigma, "zeros", "clamp")).similarity(a, b).item()
        out[name] = dict(official=off, ours=ours, clamp=clamp, shape=list(shape), sigma=sigma)
        print(f"1 - LNCC on features {name} {shape}, sigma {sigma}: official {off:.7f}, ours "
              f"{ours:.7f} (|diff| {abs(off - ours):.3g}); with the clamp epsilon {clamp:.7f}")
    for name, shape, sigma in (("pixels_2d_256", (2, 1, 256, 256), 4), ("pixels_3d_96x80x64", (1, 1, 96, 80, 64), 5)):
        a, b = seeded(shape, 8), seeded(shape, 9)
        b = 0.5 * a + 0.5 * b
        off = losses.LNCC(sigma)(a, b).item()
        w = lncc_window(sigma, "zeros", "official")
        w["eps"] = 1e-5
        ours = 1 - LNCC(**w).similarity(a, b).item()
        out[name] = dict(official=off, ours=ours, shape=list(shape), sigma=sigma)
        print(f"1 - LNCC on pixels {name}: official {off:.7f}, ours {ours:.7f} (|diff| {abs(off - ours):.3g})")
    report["lncc"] = out


def compare_regulariser(wrappers, report):
    out = {}
    for name, shape in (("2d_256", (256, 256)), ("3d_224x192x160", (224, 192, 160))):
        nd = len(shape)
        u = seeded((1, nd, *shape), 10, 2.0) - 1.0            # voxel displacement in [-1, 1]
        scale = torch.tensor([n - 1.0 for n in shape]).view(1, -1, *([1] * nd))
        ns = types.SimpleNamespace(identity_map=torch.zeros(1, nd, *shape))
        off = wrappers.DiffusionRegularizedNet.compute_bending_energy_loss(ns, -(u / scale)).item()
        ours = DiffusionICON()(u).item()
        voxel = Diffusion()(u).item()
        out[name] = dict(official=off, ours=ours, voxel_mean=voxel)
        print(f"regulariser {shape}: official {off:.7g}, ours (diffusion_icon) {ours:.7g} "
              f"(rel. diff {abs(off - ours) / off:.3g}); official / (D x voxel diffusion) {off / (nd * voxel):.4f}")
    report["regulariser"] = out


def write_fixtures(networks, wrappers, losses, out: Path, report):
    """Small-width official chains with random weights and their phi_AB. The inputs are not
    stored: the test regenerates them from the seeds of `seeded` (torch's CPU generator). The 3D
    chain needs >= ~129 voxels per axis (8 halvings), so only a fixed random sample of its phi is
    kept, with the sum and sum of squares of the whole map."""
    out.mkdir(parents=True, exist_ok=True)
    fixture = {"down": list(SMALL_DOWN), "up": list(SMALL_UP), "seeds": [5, 6]}
    for ndim, shape, batch in ((2, (40, 48), 2), (3, (136, 136, 136), 1)):
        off, ours, a, b, po = compare_chain(networks, wrappers, ndim, shape, batch, report,
                                            SMALL_DOWN, SMALL_UP, key=f"fixture_network_{ndim}d")
        entry = {"state_dict": {k: v.clone() for k, v in off.state_dict().items()},
                 "shape": [batch, 1, *shape], "sum": float(po.double().sum()),
                 "sum_sq": float((po.double() ** 2).sum())}
        if ndim == 2:
            entry["phi"] = po.clone()
        else:
            flat = po.reshape(-1)
            idx = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(11))[:4096]
            entry["index"], entry["phi_sample"] = idx.clone(), flat[idx].clone()   # clone: a slice keeps its storage
        fixture[f"{ndim}d"] = entry
    full = {}
    for ndim in (2, 3):
        sd = official_net(networks, wrappers, ndim).state_dict()
        full[f"{ndim}d"] = {"names": [[k, list(v.shape)] for k, v in sd.items()],
                            "parameters": int(sum(v.numel() for k, v in sd.items()
                                                  if "running" not in k and "num_batches" not in k))}
    torch.save(fixture, out / "network_small.pt")
    (out / "network_official_names.json").write_text(json.dumps(full))
    scalars = {"lncc": report["lncc"], "regulariser": report["regulariser"]}
    (out / "official_scalars.json").write_text(json.dumps(scalars, indent=1))
    print(f"fixtures written to {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/uncbiag/dgir")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    networks, wrappers, losses = load_official(args.official)
    report: dict = {}
    compare_unet(networks, 2, (256, 256), report)
    compare_unet(networks, 3, (64, 48, 40), report)
    compare_chain(networks, wrappers, 2, (256, 256), 2, report)
    compare_chain(networks, wrappers, 3, (144, 136, 136), 1, report)   # the official chain needs >= ~136 per axis
    compare_lncc(losses, report)
    compare_regulariser(wrappers, report)
    if args.write_fixtures:
        write_fixtures(networks, wrappers, losses, args.write_fixtures, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
