"""CorrMLP: the network against a fixture from the official code
(`benchmarks/corrmlp_fidelity.py --write-fixtures tests/fixtures/corrmlp`), and as the backbone
of the pairwise (VoxelMorph-style) method."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.methods import build_method, load_method
from diffreg.nets import build_backbone
from diffreg.nets.corrmlp import PAIRWISE_SETTINGS, CorrMLP, Correlation

from .synthetic import fit_known_shift, seeded, smooth_shift_pairs

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "corrmlp"
CPU = torch.device("cpu")
SMALL = {"enc_channels": 2, "dec_channels": 4}


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "corrmlp_small.pt", weights_only=True)


def seeded_state(net, seed):
    """The benchmark's random weights (its `randomise`: unit-gain matrices, vectors in [-0.5, 0.5),
    flow heads x 0.1), drawn in parameter order: the fixture stores the seed, not 1.2 M numbers."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, p in net.named_parameters():
        r = torch.rand(p.shape, generator=g) * 2 - 1
        r = r * math.sqrt(3 * p.shape[0] / p.numel()) if p.ndim > 1 else r / 2
        state[name] = r * 0.1 if "reg_head" in name else r
    return state


def test_corrmlp_equals_the_official_code(fixture):
    net = CorrMLP(3, **fixture["config"]).eval()
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == fixture["names"]
    net.load_state_dict(seeded_state(net, fixture["seeds"][0]), strict=True)
    shape = tuple(fixture["shape"])
    mov, fix = (seeded(shape, s) for s in fixture["seeds"][1:])
    with torch.no_grad():
        field = net(torch.cat([mov, fix], 1))
    assert (field - fixture["field"]).abs().max().item() < 1e-5


def test_corrmlp_full_network_has_the_official_names_and_shapes(fixture):
    with torch.device("meta"):
        net = CorrMLP(3)
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == fixture["full_names"]
    assert sum(p.numel() for p in net.parameters()) == fixture["full_parameters"] == 4_190_834


def test_correlation_of_a_shifted_copy_peaks_at_the_shift():
    """x2 = x1 moved by +1 along axis 1: the product with x2 read at offset (0, +1) is mean(x1^2)."""
    x1 = torch.randn(1, 3, 6, 7)
    x2 = torch.roll(x1, 1, dims=3)
    corr = Correlation(2)(x1, x2)
    assert corr.shape == (1, 9, 6, 7)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    best = corr[inner].mean((0, 2, 3)).argmax().item()
    assert best == 1 * 3 + 2                                # offsets row-major over (-1, 0, 1)^2: (0, +1)


def test_checkpointing_changes_no_value_or_gradient():
    x = seeded((1, 2, 16, 16), 5)
    a, b = CorrMLP(2, **SMALL, checkpoint=True), CorrMLP(2, **SMALL, checkpoint=False)
    b.load_state_dict(a.state_dict())
    for p in list(a.parameters()) + list(b.parameters()):
        p.grad = None
    with torch.no_grad():
        for net in (a, b):
            net.Decoder.reghead_1.reg_head.weight.fill_(0.01)
    ua, ub = a(x), b(x)
    (ua ** 2).sum().backward()
    (ub ** 2).sum().backward()
    assert torch.allclose(ua, ub)
    assert torch.allclose(a.Encoder.Convblock_1.Conv_1.weight.grad, b.Encoder.Convblock_1.Conv_1.weight.grad,
                          rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("ndim,shape", [(2, (2, 2, 44, 36)), (3, (1, 2, 20, 16, 12))])
def test_corrmlp_maps_pairs_to_fields_of_the_right_shape(ndim, shape):
    net = build_backbone("corrmlp", ndim, **SMALL)
    u = net(seeded(shape, 1))                               # sizes padded to 8 inside, cropped back
    assert u.shape == (shape[0], ndim, *shape[2:]) and torch.isfinite(u).all()
    assert u.abs().max() < 1e-2                             # N(0, 1e-5) heads: near the identity


def test_corrmlp_settings():
    m = build_method("voxelmorph", 3, {**PAIRWISE_SETTINGS["official"], "backbone_kwargs": SMALL}, CPU)
    assert (m.cfg.lambda_reg, m.cfg.lr, m.cfg.iterations, m.cfg.batch_size) == (1.0, 1e-4, 100_000, 1)
    m2m = PAIRWISE_SETTINGS["m2m_reg"]
    assert (m2m["lambda_reg"], m2m["lr"], m2m["batch_size"], m2m["iterations"]) == (1000.0, 5e-5, 2, 50_000)


def _method(iterations):
    torch.manual_seed(0)
    # no checkpointing: the same values, less time
    return build_method("voxelmorph", 2, {"backbone": "corrmlp", "backbone_kwargs": {**SMALL, "checkpoint": False},
                                          "similarity": "mse", "lambda_reg": 0.01, "iterations": iterations,
                                          "lr": 3e-3, "batch_size": 2,
                                          "log_every": 1000, "inter_subject": False, "pad_multiple": 8}, CPU)


def test_corrmlp_trains_one_step_and_saves_and_loads(tmp_path):
    m = _method(1)
    summary = m.fit(smooth_shift_pairs(n=2, size=24))
    assert summary["iterations"] == 1 and np.isfinite(summary["loss_last_10pct"])
    a, b = seeded((1, 1, 24, 24), 1), seeded((1, 1, 24, 24), 2)
    m.save(tmp_path)
    back = load_method(tmp_path, CPU)
    assert back.cfg.backbone == "corrmlp"
    assert torch.equal(back.register(a, b).displacement, m.register(a, b).displacement)


def test_corrmlp_registers_a_shift_better_than_identity():
    """2D (the network's analogue of the 3D paper network): smooth random images shifted by 2
    voxels along axis 0; after a short fit the field points about 2 voxels back."""
    data = smooth_shift_pairs(size=24)
    m = _method(20)
    summary, before, after, shift = fit_known_shift(m, data, 6)
    assert summary["loss_last_10pct"] < summary["loss_first_10pct"]
    assert after < 0.6 * before
    assert -2.6 < shift < -1.0     # b(x) = a(x - 2): u ~ -2 on axis 0
