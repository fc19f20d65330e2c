"""Swin-Unet (diffreg.nets.swin_unet) against the official code on identical random weights.

    python benchmarks/swin_unet_fidelity.py --official /path/to/Swin-Unet [--extra-path DIR] \
        [--save-fixture tests/fixtures/swin_unet] [--json out.json]

Imports ``networks/swin_transformer_unet_skip_expand_decoder_sys.py`` (``SwinTransformerSys``) of
HuCaoFighting/Swin-Unet from its checkout (never part of diffreg). It needs ``einops`` (from
--extra-path when not installed) and ``timm.models.layers`` (DropPath, to_2tuple, trunc_normal_):
timm when it imports, else stand-ins (DropPath is the identity in eval mode and the weights are
overwritten, so they do not change the outputs). The official weights are drawn at random
(unit-gain uniform); the buffers (relative position indices, shifted-window masks) must equal
ours before our module loads the official state dict with ``strict=True``. Prints, for
  - the official Synapse config (224x224, patch 4, window 7, Swin-T widths; 3 in, 9 classes):
    names and shapes equal, parameter counts, the largest |output difference|;
  - a small network (64x64, 2 in, 2 out, width 4, window 4: shifted windows at 1/4 and 1/8, one
    clamped window at 1/16 and 1/32): the same; --save-fixture saves it for
    tests/unit/test_uvit_swin_unet.py (well under 1 MB).
Exit status 1 when a difference exceeds 1e-5.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch
from torch import nn

from random_weights import unit_gain  # noqa: E402  (benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.nets.swin_unet import SwinUnet  # noqa: E402

TOL = 1e-5
# official SwinTransformerSys keyword arguments (drop_path_rate 0: eval mode ignores it anyway)
SYNAPSE = dict(img_size=224, patch_size=4, in_chans=3, num_classes=9, embed_dim=96, depths=[2, 2, 2, 2],
               num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4.0, qkv_bias=True, drop_path_rate=0.0)
SMALL = dict(img_size=64, patch_size=4, in_chans=2, num_classes=2, embed_dim=4, depths=[2, 2, 2, 2],
             num_heads=[1, 1, 2, 2], window_size=4, mlp_ratio=4.0, qkv_bias=True, drop_path_rate=0.0)
SEEDS = (11, 1)                                                     # weights, images


def load_official(root: Path, extra: list[Path]):
    for p in extra:
        sys.path.insert(0, str(p))
    try:
        from timm.models.layers import DropPath, to_2tuple, trunc_normal_  # noqa: F401
    except Exception:              # stand-ins: identity DropPath in eval, init overwritten
        class DropPath(nn.Identity):
            def __init__(self, *a, **k):
                super().__init__()
        for name in ("timm", "timm.models"):
            sys.modules[name] = types.ModuleType(name)
        layers = types.ModuleType("timm.models.layers")
        layers.__dict__.update(DropPath=DropPath, trunc_normal_=nn.init.trunc_normal_,
                               to_2tuple=lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x))
        sys.modules["timm.models.layers"] = layers
    sys.path.insert(0, str(root / "networks"))
    from swin_transformer_unet_skip_expand_decoder_sys import SwinTransformerSys
    return SwinTransformerSys


def ours_for(cfg: dict) -> SwinUnet:
    kw = {k: v for k, v in cfg.items() if k not in ("in_chans", "num_classes", "drop_path_rate")}
    return SwinUnet(2, in_channels=cfg["in_chans"], out_channels=cfg["num_classes"], head_std=None, **kw)


def compare(official_cls, cfg: dict, report: dict, key: str):
    official = official_cls(**cfg).eval()
    ours = ours_for(cfg).eval()
    off_state, our_state = official.state_dict(), ours.state_dict()
    names_off = [(k, tuple(v.shape)) for k, v in off_state.items()]
    names_ours = [(k, tuple(v.shape)) for k, v in our_state.items()]
    params = {k for k, _ in official.named_parameters()}
    buffers_equal = all(torch.equal(off_state[k], our_state[k]) for k in off_state if k not in params)
    unit_gain(official, SEEDS[0])
    ours.load_state_dict(official.state_dict(), strict=True)
    s = cfg["img_size"]
    x = torch.rand((2, cfg["in_chans"], s, s), generator=torch.Generator().manual_seed(SEEDS[1]))
    with torch.no_grad():
        ref, out = official(x), ours(x)
    diff = (out - ref).abs().max().item()
    n = sum(p.numel() for p in ours.parameters())
    report[key] = dict(config=cfg, names_shapes_equal=names_off == names_ours, buffers_equal=buffers_equal,
                       parameters=n, official_parameters=sum(p.numel() for p in official.parameters()),
                       max_abs_diff=diff, max_abs_output=ref.abs().max().item())
    print(f"{key}: {n:,} parameters (official {report[key]['official_parameters']:,}); names and shapes "
          f"equal (in order): {names_off == names_ours}; buffers equal: {buffers_equal}; largest |output "
          f"difference| {diff:.3g} (largest |output| {ref.abs().max().item():.3g})")
    return ours, x, ref, names_off


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/HuCaoFighting/Swin-Unet")
    ap.add_argument("--extra-path", type=Path, action="append", default=[], help="folder with einops (timm)")
    ap.add_argument("--save-fixture", type=Path, default=None, help="folder for swin_unet_small.pt")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    official = load_official(args.official, args.extra_path)
    report = {}
    _, _, _, names_full = compare(official, SYNAPSE, report, "synapse")
    ours, x, ref, _ = compare(official, SMALL, report, "small")
    if args.save_fixture:
        args.save_fixture.mkdir(parents=True, exist_ok=True)
        fx = dict(config=SMALL, state={k: v.clone() for k, v in ours.state_dict().items()}, x=x,
                  output=ref.clone(), full_config=SYNAPSE, full_names=[[k, list(s)] for k, s in names_full],
                  full_parameters=report["synapse"]["parameters"])
        torch.save(fx, args.save_fixture / "swin_unet_small.pt")
        print(f"fixture written to {args.save_fixture / 'swin_unet_small.pt'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if all(r["max_abs_diff"] <= TOL and r["names_shapes_equal"] and r["buffers_equal"]
                    for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
