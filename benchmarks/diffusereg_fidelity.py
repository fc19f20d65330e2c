"""DiffuseReg's networks (diffreg.nets.diffusereg_swin, diffreg.nets.vtn_lowres) against the
official modules on identical random weights.

    python benchmarks/diffusereg_fidelity.py --official /path/to/DiffuseReg \
        [--save-fixture tests/fixtures/diffusereg] [--json out.json] [--official-size]

Imports `model/diffusion_3D/swin_unetR.py` (class `SwinUNETR`, built directly, not via
`define_G`) and `model/diffusion_3D/unet.py` (`RecursiveCascadeNetwork`, `VTNAffineStemlowRes`,
`VTNlowRes`, `SpatialTransform`) of KUJOYUTA/DiffuseReg from its checkout, never part of diffreg.
To import them here: `SimpleITK` is stubbed (imported, unused by the networks), `einops.rearrange`
is given by a small permute shim when einops is not installed, MONAI >= 1.5's `deprecated_arg`
(which makes the official `img_size` argument an error) is replaced by a no-op, and `.cuda()` is
the identity on a machine without CUDA (the official cascade builds its identity matrix with it).

Weights: unit-gain uniform (benchmarks/random_weights.py) rounded to k / 7 of each tensor's
largest value, k in -7..7, and inputs k / 7 (so the fixture stores both exactly, as 4-bit
integers two to a byte, plus one scale per tensor); our module loads the official state dict
with strict=True. Reports the largest |difference|:
  - the denoiser at feature 12 (official layout otherwise), input (1, 5, 32, 64, 64), eval mode,
    two timesteps; with --official-size also feature 120 (437 M parameters; needs ~20 GB);
  - the VTN (affine stem + 3 cascades) at the official 16 channels, 32 x 128 x 128: every
    aggregated flow and warped image; and at 4 channels for the fixture.
The VTN fixture holds each cascade alone, not the chain: cascade i on the fixed image and the
official chain's warped image i - 1 rounded to k / 7 (stored exactly), its flow-output layers
(conv7_W, conv7_b, pred0) scaled by 1/16 so that flows are a few voxels. The chain amplifies
float rounding: with unit-gain flows of ~60 voxels a 1e-7 relative change of the input moves the
last aggregated flow by 0.03 voxel, so a chain fixture written on one CPU did not hold to 1e-5 on
another (0.029 on an AMD EPYC; official and ours on one machine: 0). The chain itself is compared
here, official beside ours, on one machine.
Exit status 1 when a difference exceeds 1e-5.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import types
from pathlib import Path

import torch

from random_weights import unit_gain  # noqa: E402  (benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.nets.diffusereg_swin import DiffuseRegSwinUNETR  # noqa: E402
from diffreg.nets.vtn_lowres import LowResVTN  # noqa: E402

TOL = 1e-5
SWIN = dict(depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), window_size=(2, 4, 4))
TIMESTEPS = [1999, 37]


def _rearrange(x, pattern: str):
    """einops.rearrange for the pure axis permutations the official code uses."""
    left, right = (s.split() for s in pattern.split("->"))
    return x.permute(*[left.index(a) for a in right])


def install_shims() -> None:
    if "einops" not in sys.modules:
        try:
            import einops  # noqa: F401
        except ImportError:
            sys.modules["einops"] = types.SimpleNamespace(rearrange=_rearrange, __spec__=None)
    sys.modules.setdefault("SimpleITK", types.ModuleType("SimpleITK"))
    import monai.utils.deprecate_utils as dep

    dep.deprecated_arg = lambda *a, **k: (lambda fn: fn)
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self


LEVELS = 7


def quantised(module: torch.nn.Module, seed: int) -> None:
    """unit_gain weights rounded to k / 7 of each tensor's largest |value|, k in -7..7."""
    unit_gain(module, seed)
    with torch.no_grad():
        for p in module.parameters():
            s = p.abs().max().clamp_min(1e-12) / LEVELS
            p.copy_(torch.round(p / s) * s)


def nibbles(q: torch.Tensor) -> dict:
    """Integers in -7..7 -> two per byte (tests/unit/test_diffusereg.py unpacks them)."""
    flat = (q.flatten().to(torch.int16) + 8).to(torch.uint8)
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    return {"packed": flat[0::2] * 16 + flat[1::2], "shape": list(q.shape)}


def pack(state: dict) -> dict:
    """Float tensors -> 4-bit integers + scale where exact; others as they are."""
    out = {}
    for k, v in state.items():
        if v.is_floating_point():
            s = v.abs().max().clamp_min(1e-12) / LEVELS
            q = torch.round(v / s)
            if torch.equal(q * s, v):
                out[k] = {**nibbles(q), "scale": s}
                continue
        out[k] = v
    return out


def int_images(shape, seed):
    """Integer inputs in -7..7 (the inputs are these / 7)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-LEVELS, LEVELS + 1, shape, generator=g, dtype=torch.int8)


def compare_swin(official_mod, feature: int, report: dict, key: str, size=(32, 64, 64)):
    cfg = dict(SWIN, feature_size=feature)
    official = official_mod.SwinUNETR(img_size=size, in_channels=3, out_channels=3, **cfg).eval()
    ours = DiffuseRegSwinUNETR(**cfg).eval()
    names_off = [(k, tuple(v.shape)) for k, v in official.state_dict().items()]
    names_ours = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    quantised(official, 5)
    ours.load_state_dict(official.state_dict(), strict=True)
    xq = int_images((1, 5, *size), 3)
    x = xq.float() / LEVELS
    t = torch.tensor(TIMESTEPS[:1])
    outs = {}
    with torch.no_grad():
        for tt in TIMESTEPS:
            t = torch.tensor([tt])
            ref, out = official(x, t), ours(x, t)
            outs[tt] = ref
            d = (out - ref).abs().max().item()
            report[f"{key}_t{tt}"] = dict(max_abs_diff=d, max_abs_output=ref.abs().max().item())
    n = sum(p.numel() for p in ours.parameters())
    diff = max(report[f"{key}_t{tt}"]["max_abs_diff"] for tt in TIMESTEPS)
    report[key] = dict(feature=feature, input=list(x.shape), names_shapes_equal=names_off == names_ours,
                       parameters=n, official_parameters=sum(p.numel() for p in official.parameters()),
                       max_abs_diff=diff)
    print(f"{key}: {n:,} parameters (official {report[key]['official_parameters']:,}); names and shapes "
          f"equal (in order): {names_off == names_ours}; largest |eps difference| {diff:.3g} over t={TIMESTEPS} "
          f"(largest |eps| {max(o.abs().max().item() for o in outs.values()):.3g})")
    return official, xq, outs


def official_vtn(unet_mod, size, channels):
    stn = unet_mod.SpatialTransform(size)
    net = unet_mod.RecursiveCascadeNetwork(n_cascades=3, im_size=size, network="VTNlowRes", stn=stn)
    if channels != 16:
        net.stems = [unet_mod.VTNAffineStemlowRes(channels=channels, im_size=size)] + [
            unet_mod.VTNlowRes(dim=3, flow_multiplier=1 / 3, channels=channels, im_size=size) for _ in range(3)]
    for i, s in enumerate(net.stems):
        quantised(s, 20 + i)
        s.eval()
    return net


def compare_vtn(unet_mod, channels: int, report: dict, key: str, size=(32, 128, 128)):
    official = official_vtn(unet_mod, list(size), channels)
    ours = LowResVTN(size, 3, channels).eval()
    ours.load_official({f"cascade {i}": s.state_dict() for i, s in enumerate(official.stems)})
    # images in [-1, 1] (the official range)
    fq, mq = int_images((1, 1, *size), 9), int_images((1, 1, *size), 10)
    f, m = fq.float() / LEVELS, mq.float() / LEVELS
    with torch.no_grad():
        ref_flows, ref_warps, _ = official(f, m)
        flows, warps, _ = ours(f, m)
    dflow = max((a - b).abs().max().item() for a, b in zip(flows, ref_flows))
    dwarp = max((a - b).abs().max().item() for a, b in zip(warps, ref_warps))
    n = sum(p.numel() for p in ours.parameters())
    report[key] = dict(channels=channels, size=list(size), parameters=n,
                       official_parameters=sum(p.numel() for s in official.stems for p in s.parameters()),
                       max_abs_diff_flow=dflow, max_abs_diff_warped=dwarp,
                       max_abs_flow=ref_flows[-1].abs().max().item())
    print(f"{key}: {n:,} parameters (official {report[key]['official_parameters']:,}); largest |flow difference| "
          f"{dflow:.3g} voxels (largest |flow| {ref_flows[-1].abs().max().item():.3g}), |warped difference| {dwarp:.3g}")
    return official, fq, mq, ref_flows, ref_warps


FLOW_GAIN = 1 / 16      # the fixture's flow-output layers: flows of a few voxels (module docstring)
FLOW_LAYERS = ("conv7_W", "conv7_b", "pred0")


def vtn_fixture(vtn, fq, mq, warps, sub) -> dict:
    """Each official cascade alone on stored inputs: the fixed image, and the moving image (cascade
    0) or the chain's warped image before it rounded to k / 7; its flow on the voxel subset `sub`."""
    stems, inputs, flows = {}, {}, {}
    f = fq.float() / LEVELS
    for i, stem in enumerate(vtn.stems):
        with torch.no_grad():
            for name, p in stem.named_parameters():
                if name.startswith(FLOW_LAYERS):
                    p.mul_(FLOW_GAIN)        # a power of two: the k / 7 weights stay exact
        q = mq if i == 0 else torch.round(warps[i - 1].clamp(-1, 1) * LEVELS)
        flows[i] = stem(f, q.float() / LEVELS)["flow"][sub].clone()
        stems[f"cascade {i}"], inputs[i] = pack(stem.state_dict()), nibbles(q)
    return {"channels": 4, "size": [32, 128, 128], "state": stems, "fixed_over_7": nibbles(fq),
            "moving_over_7": inputs, "flow": flows, "subset": [2, 4, 4]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/KUJOYUTA/DiffuseReg")
    ap.add_argument("--save-fixture", type=Path, default=None, help="folder for the fixtures")
    ap.add_argument("--official-size", action="store_true", help="also the 437 M-parameter denoiser (feature 120)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    install_shims()
    sys.path.insert(0, str(args.official))
    import model.diffusion_3D.swin_unetR as swin_mod
    import model.diffusion_3D.unet as unet_mod

    torch.set_grad_enabled(False)
    report: dict = {}
    official, xq, outs = compare_swin(swin_mod, 12, report, "denoiser_f12")
    if args.official_size:
        compare_swin(swin_mod, 120, report, "denoiser_f120")
    compare_vtn(unet_mod, 16, report, "vtn_official")
    vtn, fq, mq, flows, warps = compare_vtn(unet_mod, 4, report, "vtn_c4")
    if args.save_fixture:
        args.save_fixture.mkdir(parents=True, exist_ok=True)
        # outputs on a strided subset of voxels keep the file small; every weight is stored
        sub = (slice(None), slice(None), slice(None, None, 2), slice(None, None, 4), slice(None, None, 4))
        torch.save({"config": dict(SWIN, feature_size=12), "state": pack(official.state_dict()),
                    "x_over_7": nibbles(xq), "timesteps": TIMESTEPS, "subset": [2, 4, 4],
                    "eps": {t: o[sub].clone() for t, o in outs.items()}},
                   args.save_fixture / "denoiser_f12.pt")
        torch.save(vtn_fixture(vtn, fq, mq, warps, sub), args.save_fixture / "vtn_c4.pt")
        print(f"fixtures written to {args.save_fixture}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    worst = max(v for r in report.values() for k, v in r.items() if re.match(r"max_abs_diff", k))
    print(f"largest difference overall: {worst:.3g} (tolerance {TOL})")
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    sys.exit(main())
