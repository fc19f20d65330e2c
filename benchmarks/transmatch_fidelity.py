"""TransMatch (diffreg.nets.transmatch) against the official code on identical random weights.

    python benchmarks/transmatch_fidelity.py --official /path/to/TransMatch_TMI \
        [--extra-path /tmp/bench_deps] [--write-fixtures tests/fixtures/transmatch] [--lpba]

Imports ``Models/`` of tzayuan/TransMatch_TMI from its checkout (never part of diffreg). It needs
``timm`` (DropPath, trunc_normal_, to_3tuple) and ``ml_collections`` (its config): from
--extra-path when there, else stand-ins (DropPath is the identity in eval mode and the weights are
overwritten, so they do not change the outputs). Prints:
  - the full network (official LPBA40 config): names and shapes equal, strict load both ways,
    parameter count, and the field on one 64^3 pair (--lpba: also 160x192x160);
  - a small-width network (the official modules at a small width, assembled as the official
    __init__ does): the field on a 128x32x64 pair (window (4, 3, 2)).
Our network runs with the official code's options: fixed_stream="moving_lwsa" (its forward encodes
the fixed image with moving_lwsa) and window_merge="official" (its 3D window_reverse).
With --write-fixtures it writes what tests/unit/test_transmatch.py checks.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from random_weights import seeded  # noqa: E402  (benchmarks/)
from diffreg.nets.transmatch import OFFICIAL_3D, TransMatch  # noqa: E402

# small width for the fixture: non-cubic windows exercise the bias index, padding and shift masks
# (the official pads axis 0 by axis 2's need and vice versa: with w0 != w2, axes 0 and 2 must need none)
SMALL = dict(embed_dim=4, depths=(2, 2, 4, 2), num_heads=(1, 1, 2, 2), window_size=(4, 3, 2), reg_head_chan=4)
SMALL_SHAPE = (1, 1, 128, 32, 64)
OFFICIAL_OPTIONS = dict(fixed_stream="moving_lwsa", window_merge="official")
SEEDS = (11, 1, 2)                     # weights, moving, fixed



def randomise(module: nn.Module, seed: int) -> None:
    """Uniform weights of unit gain (matrices) and in [-0.5, 0.5) (vectors), in parameter order;
    the flow heads (``reg_head``) x 0.1, so that fields are a few voxels, as in registration."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            r = torch.rand(p.shape, generator=g) * 2 - 1
            r = r * math.sqrt(3 * p.shape[0] / p.numel()) if p.ndim > 1 else r / 2
            p.copy_(r * 0.1 if "reg_head" in name else r)


def _stub(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def load_official(root: Path, extra: list[Path]):
    for p in extra:
        sys.path.insert(0, str(p))
    try:
        from timm.models.layers import DropPath, to_3tuple, trunc_normal_  # noqa: F401
    except Exception:              # stand-ins: identity DropPath in eval, init overwritten
        class DropPath(nn.Identity):
            def __init__(self, *a, **k):
                super().__init__()
        for name in ("timm", "timm.models"):
            _stub(name)
        _stub("timm.models.layers", DropPath=DropPath, trunc_normal_=nn.init.trunc_normal_,
              to_3tuple=lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x,) * 3)
    try:
        import ml_collections  # noqa: F401
    except ImportError:
        _stub("ml_collections", ConfigDict=types.SimpleNamespace)
    sys.path.insert(0, str(root))
    from Models import Conv3dReLU, Decoder, LWCA, LWSA, TransMatch as TM
    return types.SimpleNamespace(Conv3dReLU=Conv3dReLU, Decoder=Decoder, LWCA=LWCA, LWSA=LWSA, TM=TM)


def official_config(**over):
    cfg = dict(if_transskip=True, if_convskip=True, patch_size=4, in_chans=1, embed_dim=96, depths=(2, 2, 4, 2),
               num_heads=(4, 4, 8, 8), window_size=(5, 6, 5), mlp_ratio=4, pat_merg_rf=4, qkv_bias=False,
               drop_rate=0, drop_path_rate=0.3, ape=False, spe=False, patch_norm=True, use_checkpoint=False,
               out_indices=(0, 1, 2, 3), reg_head_chan=16, img_size=(160, 192, 160))
    cfg.update(over)
    return types.SimpleNamespace(**cfg)


def official_small(m, cfg):
    """The official TransMatch with its forward, built at another width (its __init__ hardcodes 96)."""
    net = m.TM.TransMatch.__new__(m.TM.TransMatch)
    nn.Module.__init__(net)
    e, r = cfg.embed_dim, cfg.reg_head_chan
    net.avg_pool = nn.AvgPool3d(3, stride=2, padding=1)
    net.c1 = m.Conv3dReLU.Conv3dReLU(2, e // 2, 3, 1, use_batchnorm=False)
    net.c2 = m.Conv3dReLU.Conv3dReLU(2, r, 3, 1, use_batchnorm=False)
    net.moving_lwsa, net.fixed_lwsa = m.LWSA.LWSA(cfg), m.LWSA.LWSA(cfg)
    for k in range(4):
        setattr(net, f"lwca{k + 1}", m.LWCA.LWCA(cfg, dim_diy=e * 2 ** k))
    widths = [(8 * e, 4 * e), (4 * e, 2 * e), (2 * e, e), (e, e // 2), (e // 2, r)]
    for i, (cin, cout) in enumerate(widths):
        setattr(net, f"up{i}", m.Decoder.DecoderBlock(cin, cout, skip_channels=cout, use_batchnorm=False))
    net.up = nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
    net.reg_head = m.Decoder.RegistrationHead(in_channels=e // 2, out_channels=3, kernel_size=3)
    return net


def same_weights(ours: TransMatch, official: nn.Module, seed: int) -> None:
    randomise(ours, seed)
    off = official.state_dict()
    for k, v in ours.state_dict().items():          # the buffers (relative position indices) agree
        if not v.is_floating_point():
            assert torch.equal(off[k], v), k
    official.load_state_dict(ours.state_dict(), strict=True)
    ours.eval(), official.eval()


def field_diff(ours, official, shape, report, key, dtype=torch.float32):
    ours.to(dtype), official.to(dtype)
    mov, fix = seeded(shape, SEEDS[1]).to(dtype), seeded(shape, SEEDS[2]).to(dtype)
    with torch.no_grad():
        t = time.perf_counter()
        ref = official(mov, fix)
        t_off = time.perf_counter() - t
        t = time.perf_counter()
        out = ours(torch.cat([mov, fix], 1))
        t_ours = time.perf_counter() - t
    diff = (out - ref).abs().max().item()
    ours.float(), official.float()
    report[key] = dict(shape=list(shape), dtype=str(dtype), max_abs_diff=diff, max_abs_field=ref.abs().max().item(),
                       seconds_official=t_off, seconds_ours=t_ours)
    print(f"{key} {list(shape)} {str(dtype)[6:]}: largest |field difference| {diff:.3g} (largest |field| "
          f"{ref.abs().max().item():.3g}); forward {t_off:.2f} s official, {t_ours:.2f} s ours")
    return ref


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/tzayuan/TransMatch_TMI")
    ap.add_argument("--extra-path", type=Path, action="append", default=[], help="folder with timm, ml_collections")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--lpba", action="store_true", help="also the full network at 160x192x160 (slow on CPU)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    m = load_official(args.official, args.extra_path)
    report = {}

    full_off = m.TM.TransMatch(None)                      # the official __init__ (LPBA40 config)
    assembled = [(k, tuple(v.shape)) for k, v in official_small(m, official_config()).state_dict().items()]
    ours = TransMatch(3, **OFFICIAL_OPTIONS, **{k: OFFICIAL_3D[k] for k in
                                                         ("embed_dim", "depths", "num_heads", "window_size")})
    names_off = [(k, tuple(v.shape)) for k, v in full_off.state_dict().items()]
    names_ours = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    n_params = sum(p.numel() for p in ours.parameters())
    same = names_off == names_ours                      # in order
    assert assembled == names_off, "the small-width assembly must mirror the official __init__"
    report["full"] = dict(names_shapes_equal=same, parameters=n_params,
                          official_parameters=sum(p.numel() for p in full_off.parameters()))
    print(f"full network: {n_params:,} parameters (official {report['full']['official_parameters']:,}); "
          f"names and shapes equal (in order): {same}")
    same_weights(ours, full_off, SEEDS[0])
    field_diff(ours, full_off, (1, 1, 64, 64, 64), report, "full_64")
    # float32 rounding grows through 112M random weights; in float64 the two agree to rounding
    field_diff(ours, full_off, (1, 1, 64, 64, 64), report, "full_64_float64", torch.float64)
    if args.lpba:
        field_diff(ours, full_off, (1, 1, 160, 192, 160), report, "full_lpba40")

    cfg = official_config(**SMALL)
    small_off = official_small(m, cfg)
    small = TransMatch(3, **OFFICIAL_OPTIONS, **SMALL)
    same_weights(small, small_off, SEEDS[0])
    ref = field_diff(small, small_off, SMALL_SHAPE, report, "small")
    report["small"]["parameters"] = sum(p.numel() for p in small.parameters())

    if args.write_fixtures:
        args.write_fixtures.mkdir(parents=True, exist_ok=True)
        # the field at every other voxel: 1/8 of the bytes, every window position still represented
        fx = dict(config={**SMALL, **OFFICIAL_OPTIONS}, shape=list(SMALL_SHAPE), seeds=list(SEEDS[1:]),
                  state={k: v.clone() for k, v in small.state_dict().items()}, field=ref[..., ::2, ::2, ::2].clone(),
                  full_names=[[k, list(s)] for k, s in names_off], full_parameters=n_params)
        torch.save(fx, args.write_fixtures / "transmatch_small.pt")
        print(f"fixture written to {args.write_fixtures / 'transmatch_small.pt'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
