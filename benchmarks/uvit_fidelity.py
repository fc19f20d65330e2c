"""U-ViT (diffreg.nets.uvit) against the official code on identical random weights.

    python benchmarks/uvit_fidelity.py --official /path/to/U-ViT [--extra-path DIR] \
        [--save-fixture tests/fixtures/uvit] [--json out.json]

Imports ``libs/uvit.py`` (class ``UViT``) of baofff/U-ViT from its checkout (never part of
diffreg; it needs ``einops``: from --extra-path when not installed). The official weights are
drawn at random (unit-gain uniform), our module loads the official state dict with
``strict=True``, and both run on the same images and (fractional) timesteps. Prints, for
  - the paper's CIFAR-10 U-ViT-S/2 (32x32, patch 2, width 512, 13 blocks; 3 channels): names and
    shapes equal, parameter counts, the largest |output difference|;
  - a small network (2 channels, time MLP, 32x32 patch 4, width 32, 5 blocks): the same; with
    --save-fixture it is saved for tests/unit/test_uvit_swin_unet.py (well under 1 MB).
Exit status 1 when a difference exceeds 1e-5.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

from random_weights import unit_gain  # noqa: E402  (benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.nets.uvit import UViT  # noqa: E402

TOL = 1e-5
# official UViT keyword arguments; ours take in_channels / out_channels for in_chans
CIFAR10 = dict(img_size=32, patch_size=2, in_chans=3, embed_dim=512, depth=12, num_heads=8, mlp_ratio=4,
               qkv_bias=False, mlp_time_embed=False)                # U-ViT configs/cifar10_uvit_small.py
SMALL = dict(img_size=32, patch_size=4, in_chans=2, embed_dim=32, depth=4, num_heads=2, mlp_ratio=4,
             qkv_bias=False, mlp_time_embed=True)
SEEDS = (11, 1)                                                     # weights, images
TIMESTEPS = [17.0, 250.5]


def ours_for(cfg: dict) -> UViT:
    kw = {k: v for k, v in cfg.items() if k != "in_chans"}
    return UViT(2, in_channels=cfg["in_chans"], out_channels=cfg["in_chans"], head_std=None, **kw)


def compare(official_cls, cfg: dict, report: dict, key: str):
    official = official_cls(**cfg).eval()
    ours = ours_for(cfg).eval()
    names_off = [(k, tuple(v.shape)) for k, v in official.state_dict().items()]
    names_ours = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    unit_gain(official, SEEDS[0])
    ours.load_state_dict(official.state_dict(), strict=True)
    s = cfg["img_size"]
    x = torch.rand((2, cfg["in_chans"], s, s), generator=torch.Generator().manual_seed(SEEDS[1]))
    t = torch.tensor(TIMESTEPS)
    with torch.no_grad():
        ref, out = official(x, t), ours(x, t)
    diff = (out - ref).abs().max().item()
    n = sum(p.numel() for p in ours.parameters())
    report[key] = dict(config=cfg, names_shapes_equal=names_off == names_ours, parameters=n,
                       official_parameters=sum(p.numel() for p in official.parameters()),
                       max_abs_diff=diff, max_abs_output=ref.abs().max().item())
    print(f"{key}: {n:,} parameters (official {report[key]['official_parameters']:,}); names and shapes "
          f"equal (in order): {names_off == names_ours}; largest |output difference| {diff:.3g} "
          f"(largest |output| {ref.abs().max().item():.3g})")
    return ours, x, t, ref, names_off


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/baofff/U-ViT")
    ap.add_argument("--extra-path", type=Path, action="append", default=[], help="folder with einops")
    ap.add_argument("--save-fixture", type=Path, default=None, help="folder for uvit_small.pt")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    for p in [*args.extra_path, args.official]:
        sys.path.insert(0, str(p))
    import libs.uvit as official
    report = {"official_attention_mode": official.ATTENTION_MODE}
    _, _, _, _, names_full = compare(official.UViT, CIFAR10, report, "cifar10_uvit_s2")
    ours, x, t, ref, _ = compare(official.UViT, SMALL, report, "small")
    if official.ATTENTION_MODE == "flash":        # its explicit softmax(q k^T scale) v path too
        official.ATTENTION_MODE = "math"
        compare(official.UViT, SMALL, report, "small_math_attention")
    if args.save_fixture:
        args.save_fixture.mkdir(parents=True, exist_ok=True)
        fx = dict(config=SMALL, state={k: v.clone() for k, v in ours.state_dict().items()}, x=x, t=t,
                  output=ref.clone(), full_config=CIFAR10, full_names=[[k, list(s)] for k, s in names_full],
                  full_parameters=report["cifar10_uvit_s2"]["parameters"])
        torch.save(fx, args.save_fixture / "uvit_small.pt")
        print(f"fixture written to {args.save_fixture / 'uvit_small.pt'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if all(r["max_abs_diff"] <= TOL and r["names_shapes_equal"]
                    for r in report.values() if isinstance(r, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
