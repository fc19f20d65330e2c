"""GradICON / uniGradICON against their official code, on identical weights, inputs and noise.

    python benchmarks/gradicon_fidelity.py --icon /path/to/ICON --unigradicon /path/to/uniGradICON \
        [--write-fixtures tests/fixtures/gradicon]

Imports `icon_registration` (uncbiag/ICON, src/) and `unigradicon` (uncbiag/uniGradICON, src/)
from their checkouts, never part of diffreg; `itk` and `footsteps` (file I/O and logging only)
are stubbed when not installed. Prints:
  - the uniGradICON network (ICON chain of 4 tallUNet2, 175^3): names and shapes equal, strict load;
  - phi_AB of small-width chains with random weights, 2D and 3D;
  - the GradientICON (dense) and GradientICONSparse (uniGradICON) losses: similarity, the
    gradient-ICON term and the total, with the same torch seed before both.
With --write-fixtures it writes what tests/unit/test_gradicon.py checks without the official code.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from official_stubs import placeholder_module  # noqa: E402  (benchmarks/)
from random_weights import seeded, small_uniform  # noqa: E402  (benchmarks/)
from diffreg.methods.gradicon import gradicon_terms, icon_lncc  # noqa: E402
from diffreg.nets.tallunet import DGIRNet  # noqa: E402

SMALL_DOWN = (2, 4, 8, 8, 12, 12)
SMALL_UP = (4, 8, 8, 12, 12)
SHAPES = {2: (2, 1, 48, 40), 3: (1, 1, 136, 136, 136)}     # the 3D chain needs >= 129 voxels per axis




def load_official(icon_root: Path, ugi_root: Path):
    for name in ("itk", "footsteps"):
        placeholder_module(name)
    sys.path.insert(0, str(icon_root / "src"))
    sys.path.insert(0, str(ugi_root / "src"))
    import icon_registration as icon
    import icon_registration.networks as networks
    import unigradicon
    return icon, networks, unigradicon


def official_chain(icon, networks, ndim, down, up, last_step):
    unet = (lambda: networks.UNet2(len(up), [list(down), list(up)], ndim)) if down else \
        (lambda: networks.tallUNet2(dimension=ndim))
    inner = icon.FunctionFromVectorField(unet())
    for _ in range(2):
        inner = icon.TwoStepRegistration(icon.DownsampleRegistration(inner, dimension=ndim),
                                         icon.FunctionFromVectorField(unet()))
    if last_step:
        inner = icon.TwoStepRegistration(inner, icon.FunctionFromVectorField(unet()))
    return inner


def compare(icon, networks, unigradicon, ndim, sparse, report, fixture=None):
    shape = SHAPES[ndim]
    inner = official_chain(icon, networks, ndim, SMALL_DOWN, SMALL_UP, True)
    small_uniform(inner, 1)
    lmbda = 1.5
    if sparse:
        net = unigradicon.GradientICONSparse(inner, icon.LNCC(sigma=5), lmbda=lmbda)
    else:
        net = icon.GradientICON(inner, icon.LNCC(sigma=5), lmbda=lmbda)
    net.assign_identity_map(shape)
    ours = DGIRNet(ndim, 2, SMALL_DOWN, SMALL_UP, last_step=True)
    ours.net.load_state_dict(inner.state_dict(), strict=True)
    a, b = seeded(shape, 2), seeded(shape, 3)
    torch.manual_seed(7)
    off = net(a, b)
    torch.manual_seed(7)
    mine = gradicon_terms(ours.net, a, b, icon_lncc(5), lmbda, sparse)
    off_d = {"loss": off.all_loss.item(), "similarity": off.similarity_loss.item(), "icon": off.inverse_consistency_loss.item()}
    mine_d = {k: v.item() for k, v in mine.items()}
    rel = max(abs(off_d[k] - mine_d[k]) / max(abs(off_d[k]), 1e-12) for k in off_d)
    with torch.no_grad():
        phi_diff = (net.phi_AB_vectorfield - ours.map01(a, b)).abs().max().item()
    key = f"{'sparse' if sparse else 'dense'}_{ndim}d"
    report[key] = dict(official=off_d, ours=mine_d, max_rel_diff=rel, phi_max_abs_diff=phi_diff, shape=list(shape))
    print(f"{key} {list(shape)}: official loss {off_d['loss']:.7f} (similarity {off_d['similarity']:.7f}, "
          f"icon {off_d['icon']:.7g}); ours {mine_d['loss']:.7f} ({mine_d['similarity']:.7f}, {mine_d['icon']:.7g}); "
          f"largest relative difference {rel:.3g}; phi_AB max |diff| {phi_diff:.3g}")
    if fixture is not None:
        # dense and sparse share the weights (same seed): one state dict per dimensionality
        fixture[f"state_{ndim}d"] = {k: v.clone() for k, v in inner.state_dict().items()}
        fixture[key] = dict(shape=list(shape), seeds=[2, 3, 7], lmbda=lmbda, loss=off_d)


def compare_full_names(icon, networks, unigradicon, report):
    net = unigradicon.make_network([1, 1, 175, 175, 175], include_last_step=True)
    names = [[k, list(v.shape)] for k, v in net.regis_net.state_dict().items()]
    with torch.device("meta"):
        ours = DGIRNet(3, 2, last_step=True)
    same = names == [[k, list(v.shape)] for k, v in ours.net.state_dict().items()]
    n = sum(v.numel() for v in net.regis_net.parameters())
    report["unigradicon_network"] = dict(names_shapes_equal=same, parameters=n)
    print(f"uniGradICON network: {n:,} parameters; names and shapes equal: {same}")
    return names


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--icon", required=True, type=Path, help="checkout of github.com/uncbiag/ICON")
    ap.add_argument("--unigradicon", required=True, type=Path, help="checkout of github.com/uncbiag/uniGradICON")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    icon, networks, unigradicon = load_official(args.icon, args.unigradicon)
    report, fixture = {}, {} if args.write_fixtures else None
    names = compare_full_names(icon, networks, unigradicon, report)
    for ndim in (2, 3):
        for sparse in (False, True):
            compare(icon, networks, unigradicon, ndim, sparse, report, fixture)
    if args.write_fixtures:
        args.write_fixtures.mkdir(parents=True, exist_ok=True)
        fixture["down"], fixture["up"] = list(SMALL_DOWN), list(SMALL_UP)
        torch.save(fixture, args.write_fixtures / "chains_small.pt")
        (args.write_fixtures / "unigradicon_names.json").write_text(json.dumps(names))
        print(f"fixtures written to {args.write_fixtures}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
