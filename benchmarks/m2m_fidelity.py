"""M2M-Reg's training objective against the official code, on identical weights, inputs and noise.

    python benchmarks/m2m_fidelity.py --official /path/to/M2M-Reg [--write-fixtures tests/fixtures/m2m_reg]

Imports the official `models.py` and its `icon_registration` copy from the checkout (never part of
diffreg), on the CPU: `itk` and `ml_collections` (file I/O and TransMorph's config only) are
stubbed, and the 3D-only `dice_score` (a logged number, no part of the loss) is replaced by 0 so
that the objective runs in 2D. The last convolutions of the official networks start at zero (every
ICON term would be 0), so all weights are redrawn at random first.

Cases (each: the official all_loss, similarity, inverse-consistency and cycle terms against ours):
  - GradientICONSparse_M2M (GradICON chain of small tallUNet2 steps, 2 downsampled levels, 2D 32^2,
    batch 2): unsupervised (num_cano -1) and semi-supervised (a pre-aligned bridge);
  - TransMorph_wrapper_M2M (its Grad3d on the [0, 1] map and GradCyCon; 3D 24^3, one step):
    unsupervised;
each in the official composition order (ours with `composition: reversed`) and in ICON's order
(ours with the default; the official forward with its composed calls written in ICON's order,
patched in memory, shows what the official code would compute in that order). The difference
between the two orders is printed too.
With --write-fixtures it writes what tests/unit/test_m2m_fidelity.py checks without the official code.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import types
from argparse import Namespace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from official_stubs import placeholder_module  # noqa: E402  (benchmarks/)
from random_weights import seeded, small_uniform  # noqa: E402  (benchmarks/)
from diffreg.losses import build_regulariser  # noqa: E402
from diffreg.methods import build_method  # noqa: E402
from diffreg.methods.gradicon import icon_lncc  # noqa: E402
from diffreg.methods.m2m_reg import m2m_terms  # noqa: E402

DOWN = (2, 4, 8, 8, 12, 12)
UP = (4, 8, 8, 12, 12)
CASES = {   # name: (wrapper, ndim, levels, shape, num_cano, lambda_inv, lambda_can)
    "gradicon_unsup": ("GradientICONSparse_M2M", 2, 2, (2, 1, 32, 32), "-1", 0.5, 0.1),
    "gradicon_semi": ("GradientICONSparse_M2M", 2, 2, (2, 1, 32, 32), "3", 0.5, 0.1),
    "transmorph_unsup": ("TransMorph_wrapper_M2M", 3, 0, (1, 1, 24, 24, 24), "-1", 0.01, 1.0),
}
IMAGE_SEEDS = (2, 3, 4, 5)         # A, B, Ac, Bc
WEIGHT_SEED, NOISE_SEED = 1, 7
TERMS = {"loss": "all_loss", "m2m": "similarity_loss", "reg": "inverse_consistency_loss",
         "gcc": "canonical_consistency_loss"}




# --------------------------------------------------------------------------- the official side


# the official composed calls (first map innermost) -> ICON's order (first map outermost)
def _icon_order(call: re.Match) -> str:
    names = re.findall(r"self\.(phi_\w+)\(", call.group(1))
    return "".join(f"self.{n}(" for n in reversed(names)) + call.group(2) + call.group(3)


# two or more nested map calls on an argument without parentheses; not GradICON's phi_AB(phi_BA(.))
CHAIN = re.compile(r"((?:self\.phi_(?!AB\(self\.phi_BA\()\w+\(){2,})([^()]*?)(\)+)")


def load_official(root: Path):
    for name in ("itk", "ml_collections"):
        placeholder_module(name)
    sys.path.insert(0, str(root))
    import icon_registration as icon
    import icon_registration.networks as networks
    import models
    models.dice_score = lambda *a, **k: torch.zeros(())      # 3D-only, logged, not in the loss
    source = (root / "models.py").read_text()
    patched, n = CHAIN.subn(_icon_order, source)
    icon_models = types.ModuleType("models_icon_order")
    icon_models.__dict__.update({"__file__": str(root / "models.py")})
    exec(compile(patched, "models_icon_order", "exec"), icon_models.__dict__)
    icon_models.dice_score = models.dice_score
    return icon, networks, {"reversed": models, "icon": icon_models}, n


def official_inner(icon, networks, ndim, levels):
    unet = lambda: networks.UNet2(len(UP), [list(DOWN), list(UP)], ndim)     # noqa: E731
    inner = icon.FunctionFromVectorField(unet())
    for _ in range(levels):
        inner = icon.TwoStepRegistration(icon.DownsampleRegistration(inner, dimension=ndim),
                                         icon.FunctionFromVectorField(unet()))
    return inner


def run_official(icon, networks, module, case):
    wrapper, ndim, levels, shape, num_cano, lam_inv, lam_can = CASES[case]
    inner = official_inner(icon, networks, ndim, levels)
    small_uniform(inner, WEIGHT_SEED)
    args = Namespace(lambda_inv=lam_inv, lambda_can=lam_can, input_shape=list((1,) + shape[1:]),
                     num_cano=num_cano, log_mono=False)
    net = getattr(module, wrapper)(args, inner, icon.LNCC(sigma=5))
    net.assign_identity_map(args.input_shape)
    a, b, ac, bc = inputs(case)
    labels = torch.zeros(shape)
    torch.manual_seed(NOISE_SEED)
    out = net(a, b, ac, bc, labels, labels)
    return {ours: float(getattr(out, theirs).detach()) for ours, theirs in TERMS.items()}, inner.state_dict()


def inputs(case):
    shape = CASES[case][3]
    return [seeded(shape, s) for s in IMAGE_SEEDS]


# --------------------------------------------------------------------------- ours
def run_ours(case, state, order):
    wrapper, ndim, levels, shape, num_cano, lam_inv, lam_can = CASES[case]
    semi = num_cano != "-1"
    cfg = {"backbone": "gradicon", "levels": levels, "backbone_kwargs": {"down": list(DOWN), "up": list(UP)},
           "lambda_reg": lam_inv, "lambda_gcc": lam_can, "composition": order,
           "regulariser": "gradicon" if wrapper == "GradientICONSparse_M2M" else "map_gradient",
           "prealigned_pairs": 1 if semi else 0}
    m = build_method("m2m_reg", ndim, cfg, torch.device("cpu"))
    m.nets["net"].net.load_state_dict(state, strict=True)
    a, b, ac, bc = inputs(case)
    torch.manual_seed(NOISE_SEED)
    terms = m2m_terms(m.mapper(m.nets["net"]), {"A": a, "B": b, "Ac": ac, "Bc": bc}, icon_lncc(5.0), m.cfg,
                      semi, build_regulariser("diffusion"))
    return {k: float(terms[k].detach()) for k in TERMS}


def max_diff(x, y):
    return max(abs(x[k] - y[k]) for k in TERMS)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/MICV-yonsei/M2M-Reg")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    icon, networks, modules, patched = load_official(args.official)
    print(f"official forward in ICON's order: {patched} composed calls rewritten")
    report, fixture = {"patched_calls": patched}, {"down": list(DOWN), "up": list(UP), "cases": {}}
    worst = 0.0
    for case in CASES:
        results = {}
        for order in ("reversed", "icon"):
            off, state = run_official(icon, networks, modules[order], case)
            mine = run_ours(case, state, order)
            d = max_diff(off, mine)
            worst = max(worst, d)
            results[order] = {"official": off, "ours": mine, "max_abs_diff": d}
            fixture["cases"].setdefault(case, {})[order] = off
            fixture.setdefault("states", {})[case] = {k: v.clone() for k, v in state.items()}
            print(f"{case} [{order} order]: official " + ", ".join(f"{k} {v:.7g}" for k, v in off.items())
                  + f"; ours max |diff| {d:.3g}")
        gap = max_diff(results["reversed"]["official"], results["icon"]["official"])
        print(f"{case}: the two orders differ by up to {gap:.3g} (official code, patched)")
        results["order_gap"] = gap
        report[case] = results
    report["max_abs_diff"] = worst
    print(f"largest |official - ours| over all cases and terms: {worst:.3g}")
    if args.write_fixtures:
        args.write_fixtures.mkdir(parents=True, exist_ok=True)
        fixture.update(image_seeds=list(IMAGE_SEEDS), weight_seed=WEIGHT_SEED, noise_seed=NOISE_SEED)
        torch.save(fixture, args.write_fixtures / "m2m_objective.pt")
        print(f"fixture written to {args.write_fixtures}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return worst


if __name__ == "__main__":
    main()
