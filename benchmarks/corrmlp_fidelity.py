"""CorrMLP (diffreg.nets.corrmlp) against the official code on identical random weights.

    python benchmarks/corrmlp_fidelity.py --official /path/to/Registration-CorrMLP \
        [--extra-path /tmp/bench_deps] [--write-fixtures tests/fixtures/corrmlp]

Imports ``CorrMLP/networks.py`` of MungoMeng/Registration-CorrMLP from its checkout (never part of
diffreg; it needs ``einops``, e.g. from --extra-path). Prints:
  - the full network (the official defaults: enc 8, dec 16): names and shapes equal, strict load,
    parameter count, and the field on one 64^3 pair (float32 and float64);
  - a small-width network (enc 2, dec 4: the official constructor's arguments): the field on a
    32x24x40 pair (non-cubic: axis order of windows and correlation offsets).
The official forward(fixed, moving) returns (warped, flow); ours takes [moving, fixed] and returns
the flow. With --write-fixtures it writes what tests/unit/test_corrmlp.py checks: the small
network's parameter names and shapes, the weight seed (weights are regenerated: about 1.2 M of
them, most in the 343 x 343 spatial-gating matrices of the 7^3 windows) and the field.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from random_weights import seeded, unit_gain  # noqa: E402  (benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.nets.corrmlp import CorrMLP  # noqa: E402

SMALL = dict(enc_channels=2, dec_channels=4)
SMALL_SHAPE = (1, 1, 32, 24, 40)
SEEDS = (21, 1, 2)                     # weights, moving, fixed



def randomise(module: nn.Module, seed: int) -> None:
    """The flow heads (``reg_head``) x 0.1, so that fields are a few voxels, as in registration
    (tests/unit/test_corrmlp.py regenerates the fixture's weights with the same rule)."""
    unit_gain(module, seed, scaled=("reg_head",), scale=0.1)


def load_official(root: Path, extra: list[Path]):
    for p in extra:
        sys.path.insert(0, str(p))
    sys.path.insert(0, str(root / "CorrMLP"))
    import networks
    return networks


def field_diff(ours, official, shape, report, key, dtype=torch.float32):
    ours.to(dtype).eval(), official.to(dtype).eval()
    mov, fix = seeded(shape, SEEDS[1]).to(dtype), seeded(shape, SEEDS[2]).to(dtype)
    with torch.no_grad():
        t = time.perf_counter()
        ref = official(fix, mov)[1]
        t_off = time.perf_counter() - t
        t = time.perf_counter()
        out = ours(torch.cat([mov, fix], 1))
        t_ours = time.perf_counter() - t
    ours.float(), official.float()
    diff = (out - ref).abs().max().item()
    report[key] = dict(shape=list(shape), dtype=str(dtype), max_abs_diff=diff, max_abs_field=ref.abs().max().item(),
                       seconds_official=t_off, seconds_ours=t_ours)
    print(f"{key} {list(shape)} {str(dtype)[6:]}: largest |field difference| {diff:.3g} (largest |field| "
          f"{ref.abs().max().item():.3g}); forward {t_off:.2f} s official, {t_ours:.2f} s ours")
    return ref


def paired(networks, seed, **kw):
    official = networks.CorrMLP(in_channels=1, use_checkpoint=False, **kw)
    ours = CorrMLP(3, checkpoint=False, **kw)
    randomise(ours, seed)
    official.load_state_dict(ours.state_dict(), strict=True)
    return ours, official


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path,
                    help="checkout of github.com/MungoMeng/Registration-CorrMLP")
    ap.add_argument("--extra-path", type=Path, action="append", default=[], help="folder with einops")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    networks = load_official(args.official, args.extra_path)
    report = {}

    names_off = [(k, tuple(v.shape)) for k, v in networks.CorrMLP().state_dict().items()]
    names_ours = [(k, tuple(v.shape)) for k, v in CorrMLP(3).state_dict().items()]
    ours, official = paired(networks, SEEDS[0])
    n = sum(p.numel() for p in ours.parameters())
    report["full"] = dict(names_shapes_equal=names_off == names_ours, parameters=n)
    print(f"full network: {n:,} parameters; names and shapes equal (in order): {names_off == names_ours}")
    field_diff(ours, official, (1, 1, 64, 64, 64), report, "full_64")
    field_diff(ours, official, (1, 1, 64, 64, 64), report, "full_64_float64", torch.float64)

    small, small_off = paired(networks, SEEDS[0], **SMALL)
    ref = field_diff(small, small_off, SMALL_SHAPE, report, "small")
    report["small"]["parameters"] = sum(p.numel() for p in small.parameters())

    if args.write_fixtures:
        args.write_fixtures.mkdir(parents=True, exist_ok=True)
        fx = dict(config=SMALL, shape=list(SMALL_SHAPE), seeds=list(SEEDS), field=ref.clone(),
                  names=[[k, list(v.shape)] for k, v in small_off.state_dict().items()],
                  full_names=[[k, list(s)] for k, s in names_off], full_parameters=n)
        torch.save(fx, args.write_fixtures / "corrmlp_small.pt")
        print(f"fixture written to {args.write_fixtures / 'corrmlp_small.pt'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
