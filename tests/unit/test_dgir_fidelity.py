"""DGIR against the official code (uncbiag/dgir) without it: fixtures written by
`benchmarks/dgir_fidelity.py --write-fixtures tests/fixtures/dgir` from the official modules.

- network_small.pt: official ICON chains of tallUNet2 at small widths with random weights (2D 40x48
  batch 2, 3D 136^3) and their phi_AB; our DGIRNet loads each state dict with strict=True.
- network_official_names.json: parameter names and shapes of the official full-size chains.
- official_scalars.json: the official 1 - LNCC (features, eps 1e-6; pixels, eps 1e-5) and
  regulariser at 2D 256^2 and 3D 224x192x160 on inputs regenerated here from the same seeds.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from diffreg.errors import InputError
from diffreg.features.similarity import lncc_window
from diffreg.losses.regularisers import Diffusion, DiffusionICON
from diffreg.losses.similarity import LNCC
from diffreg.nets.tallunet import DGIRNet

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "dgir"
sys.path.insert(0, str(ROOT / "benchmarks"))
from dgir_fidelity import seeded, seeded_features  # noqa: E402  (the benchmark's input generators)


@pytest.fixture(scope="module")
def scalars():
    return json.loads((FIX / "official_scalars.json").read_text())


@pytest.fixture(scope="module")
def small():
    return torch.load(FIX / "network_small.pt", weights_only=True)


@pytest.mark.parametrize("ndim", [2, 3])
def test_full_size_network_has_the_official_names_shapes_and_size(ndim):
    official = json.loads((FIX / "network_official_names.json").read_text())[f"{ndim}d"]
    with torch.device("meta"):                      # 70 M parameters in 3D: shapes only
        net = DGIRNet(ndim)
    ours = [[k, list(v.shape)] for k, v in net.net.state_dict().items()]
    assert ours == official["names"]
    assert sum(p.numel() for p in net.parameters()) == official["parameters"] == \
        {2: 19_027_608, 3: 70_680_916}[ndim]


def _official_map(small, ndim):
    """Our chain with the fixture's official weights (strict load) and its phi_AB on the seeded inputs."""
    fx = small[f"{ndim}d"]
    net = DGIRNet(ndim, 3, small["down"], small["up"])
    net.net.load_state_dict(fx["state_dict"], strict=True)
    net.eval()
    a, b = (seeded(tuple(fx["shape"]), s) for s in small["seeds"])
    with torch.no_grad():
        return fx, net, a, b, net.map01(a, b)


def test_small_official_chain_2d_loads_strictly_and_gives_the_official_map(small):
    fx, net, a, b, phi = _official_map(small, 2)
    assert (phi - fx["phi"]).abs().max().item() <= 1e-5
    assert phi.double().sum().item() == pytest.approx(fx["sum"], rel=1e-6)
    # forward gives the same map as a voxel displacement
    with torch.no_grad():
        u = net(torch.cat([a, b], 1))
    scale = torch.tensor([39.0, 47.0]).view(1, 2, 1, 1)
    from diffreg.nets.tallunet import identity01
    torch.testing.assert_close(u / scale + identity01((40, 48)), phi, rtol=0, atol=1e-6)


def test_small_official_chain_3d_loads_strictly_and_gives_the_official_map(small):
    fx, _, _, _, phi = _official_map(small, 3)
    assert (phi.reshape(-1)[fx["index"]] - fx["phi_sample"]).abs().max().item() <= 1e-5
    assert phi.double().sum().item() == pytest.approx(fx["sum"], rel=1e-6)
    assert (phi.double() ** 2).sum().item() == pytest.approx(fx["sum_sq"], rel=1e-6)


def test_official_3d_network_refuses_small_volumes_with_one_line():
    from diffreg.methods.dgir import DGIR
    net = DGIRNet(3, 3, (2, 4, 4, 4, 4, 4), (4, 4, 4, 4, 4))
    assert net.min_side == 129
    with pytest.raises(ValueError, match="at least 129 voxels per axis"):
        net(torch.zeros(1, 2, 128, 136, 136))
    m = DGIR(3, {"loss": "lncc", "backbone_kwargs": {"down": [2, 4, 4, 4, 4, 4], "up": [4, 4, 4, 4, 4]}},
             torch.device("cpu"))
    with pytest.raises(InputError, match="network 'official' needs at least 129 voxels.*48x48x48.*network: small"):
        m.register(torch.zeros(1, 1, 48, 48, 48), torch.zeros(1, 1, 48, 48, 48))


@pytest.mark.parametrize("name", ["features_2d_256", "features_3d_224x192x160"])
def test_feature_lncc_with_the_official_epsilon_matches_the_official_loss(scalars, name):
    ref = scalars["lncc"][name]
    a, b = seeded_features(tuple(ref["shape"]), 7)
    ours = 1 - LNCC(**lncc_window(ref["sigma"], "zeros", "official")).similarity(a, b).item()
    clamp = 1 - LNCC(**lncc_window(ref["sigma"], "zeros", "clamp")).similarity(a, b).item()
    assert abs(ours - ref["official"]) <= 1e-5
    assert abs(clamp - ref["official"]) > 1e-2          # the clamp epsilon differs on flat channels


@pytest.mark.parametrize("name", ["pixels_2d_256", "pixels_3d_96x80x64"])
def test_pixel_lncc_with_the_official_epsilon_matches_the_official_loss(scalars, name):
    ref = scalars["lncc"][name]
    a, b = seeded(tuple(ref["shape"]), 8), seeded(tuple(ref["shape"]), 9)
    b = 0.5 * a + 0.5 * b
    ours = 1 - LNCC(**{**lncc_window(ref["sigma"], "zeros", "official"), "eps": 1e-5}).similarity(a, b).item()
    assert abs(ours - ref["official"]) <= 1e-5


@pytest.mark.parametrize("name,shape", [("2d_256", (256, 256)), ("3d_224x192x160", (224, 192, 160))])
def test_regulariser_matches_the_official_one(scalars, name, shape):
    ref = scalars["regulariser"][name]
    u = seeded((1, len(shape), *shape), 10, 2.0) - 1.0
    ours = DiffusionICON()(u).item()
    assert abs(ours - ref["official"]) <= 1e-5 * ref["official"]
    assert Diffusion()(u).item() == pytest.approx(ref["voxel_mean"], rel=1e-5)


def test_official_regulariser_scale_analytically():
    """A linear field u_c = g_c x_c: every forward difference is g_c, so the official energy is
    sum_c (N_0 g_c / (N_c - 1))^2 (each axis's difference of component c is 0 unless it is axis c)."""
    shape, g = (12, 8, 6), (0.5, -1.0, 2.0)
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij")
    u = torch.stack([gc * ax for gc, ax in zip(g, axes)])[None]
    expected = sum((shape[0] * gc / (n - 1)) ** 2 for gc, n in zip(g, shape))
    # mean over all components and voxels of axis d's difference: only component d is non-zero
    # (1/D of the components), so the sum over axes is expected / D
    assert DiffusionICON()(u).item() == pytest.approx(expected / 3, rel=1e-12)
