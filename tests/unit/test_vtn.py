"""VTN with recursive cascades: networks, the affine stem's losses, the cascade composition, the
loss terms against values known analytically, and the method (train, register, save/load)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffreg import spatial
from diffreg.errors import InputError
from diffreg.methods import build_method, load_method
from diffreg.methods.vtn import l2_variation, pearson_loss
from diffreg.nets.vtn import VTNAffineStem, VTNNet, centred_grid, det_loss, ortho_loss

from .synthetic import assert_same_weights, fit_known_shift, seeded, smooth_shift_pairs

CPU = torch.device("cpu")
SMALL = {"channels": 2, "affine_channels": 2}


@pytest.mark.parametrize("ndim,shape", [(2, (2, 2, 64, 128)), (3, (1, 2, 64, 64, 128))])
def test_networks_map_pairs_to_fields_of_the_right_shape(ndim, shape):
    x = seeded(shape, 1)
    flow = VTNNet(ndim, channels=2)(x)
    assert flow.shape == (shape[0], ndim, *shape[2:])
    assert flow.abs().max() == 0                       # the last layer starts at zero: the identity
    aflow, W, b = VTNAffineStem(ndim, shape[2:], channels=2)(x)
    assert aflow.shape == flow.shape and W.shape == (shape[0], ndim, ndim) and b.shape == (shape[0], ndim)
    with pytest.raises(ValueError, match="multiple of 64"):
        VTNNet(ndim, channels=2)(x[..., :48])


def test_affine_stem_field_is_w_times_centred_coordinates_plus_b():
    stem = VTNAffineStem(2, (64, 64), channels=2)
    with torch.no_grad():
        stem.conv7_W.weight.zero_()
        stem.conv7_b.weight.zero_()
        stem.conv7_W.weight[1, 0] = 1.0                   # W[0, 1] = sum of feature 0 over the last map
        stem.conv7_b.weight[0, 0] = 1.0
    x = seeded((1, 2, 64, 64), 3)
    flow, W, b = stem(x)
    grid = centred_grid((64, 64))
    assert W[0, 0, 1] != 0 and W[0, 0, 0] == 0 and b[0, 0] != 0 and b[0, 1] == 0
    assert torch.allclose(flow[0, 0], W[0, 0, 1] * grid[1] + b[0, 0], atol=1e-5)
    assert flow[0, 1].abs().max() == 0
    assert grid[0, 0, 0] == -31.5 and grid[1, 0, 63] == 31.5


def test_affine_losses_vanish_on_rotations_and_have_known_values():
    """A = rotation: det 1, A^T A = I: both 0. A = 2 I (2D): det loss (4 - 1)^2 / 2 = 4.5; ortho
    2 (4 + eps) + (1 + eps)^2 2 / (4 + eps) - 4 (1 + eps) ~ 4.5. Summed over the batch."""
    a = 0.3
    R = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])[None]
    W = R - torch.eye(2)
    assert det_loss(W).item() == pytest.approx(0.0, abs=1e-6)
    assert ortho_loss(W).item() == pytest.approx(0.0, abs=1e-5)
    eps = 1e-5
    W2 = torch.eye(2)[None].repeat(2, 1, 1)                # A = 2 I, batch of 2
    assert det_loss(W2).item() == pytest.approx(2 * 4.5)
    want = 2 * (2 * (4 + eps) + (1 + eps) ** 2 * 2 / (4 + eps) - 4 * (1 + eps))
    assert ortho_loss(W2).item() == pytest.approx(want, rel=1e-5)
    R3 = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.2, 0.1], [0.2, 0.0, -0.4], [-0.1, 0.4, 0.0]]))[None]
    assert ortho_loss(R3 - torch.eye(3)).item() == pytest.approx(0.0, abs=1e-4)


def test_pearson_and_l2_variation_have_known_values():
    a = seeded((2, 1, 8, 8), 4)
    assert pearson_loss(a, 3 * a + 1).item() == pytest.approx(0.0, abs=1e-4)     # r = 1
    assert pearson_loss(a, -a).item() == pytest.approx(4.0, abs=1e-4)            # 2 pairs x (1 - (-1))
    # u_0 = 0.5 x0 on 6 x 5: 5 differences of 0.5 per column -> sum 5 x 5 x 0.25; / 2 / (2 x 30)
    u = torch.zeros(1, 2, 6, 5)
    u[:, 0] = 0.5 * torch.arange(6.0)[:, None]
    assert l2_variation(u).item() == pytest.approx(0.5 * 25 * 0.25 / 60)


def test_cascades_compose_after_the_affine_stem_exactly():
    """A translation b from the stem and a cascade field u: the aggregate is u + b exactly (A = I),
    and without the stem two cascades compose as spatial.compose."""
    m = build_method("vtn", 2, {**SMALL, "n_cascades": 2}, CPU)
    x, y = seeded((1, 1, 64, 64), 5), seeded((1, 1, 64, 64), 6)
    m._check_grid(x.shape[2:])
    with torch.no_grad():
        m.nets["affine"].conv7_b.weight.normal_(0, 1e-3)
        for k in ("deform0", "deform1"):
            m.nets[k].upsamp1to0.weight.normal_(0, 1e-2)
    st = m.stages(m.nets, x, y)
    assert torch.equal(st[0]["W"], torch.zeros_like(st[0]["W"]))
    assert torch.allclose(st[1]["agg"], st[1]["flow"] + st[0]["agg"], atol=1e-6)
    assert torch.allclose(st[2]["agg"], spatial.compose(st[1]["agg"], st[2]["flow"]), atol=1e-6)
    assert torch.allclose(st[2]["warped"], spatial.warp(x, st[2]["agg"]), atol=1e-6)


def test_settings_defaults_names_and_errors():
    c = build_method("vtn", 3, {}, CPU).cfg
    assert (c.n_cascades, c.affine, c.channels, c.lambda_reg, c.lambda_det, c.lambda_ortho, c.lr, c.batch_size) == \
        (3, True, 16, 1.0, 0.1, 0.1, 1e-4, 4)
    assert build_method("vtn", 2, {**SMALL, "n_cascades": "paper"}, CPU).cfg.n_cascades == 10
    assert build_method("vtn", 2, {**SMALL, "n_cascades": "code"}, CPU).cfg.n_cascades == 1
    with pytest.raises(InputError, match="n_cascades"):
        build_method("vtn", 2, {"n_cascades": "many"}, CPU)
    with pytest.raises(InputError, match="affine_size"):
        build_method("vtn", 2, {"affine_size": [60, 64]}, CPU)
    m = build_method("vtn", 2, {**SMALL, "n_cascades": 1}, CPU)
    m.register(seeded((1, 1, 64, 64), 1), seeded((1, 1, 64, 64), 2))
    with pytest.raises(InputError, match="affine stem was built for images padded to 64x64"):
        m.register(seeded((1, 1, 80, 64), 1), seeded((1, 1, 80, 64), 2))


@pytest.mark.parametrize("ndim,shape", [(2, (1, 1, 40, 24)), (3, (1, 1, 20, 16, 12))])
def test_vtn_registers_to_a_field_of_the_input_shape(ndim, shape):
    m = build_method("vtn", ndim, {**SMALL, "n_cascades": 2}, CPU)
    disp = m.register(seeded(shape, 1), seeded(shape, 2)).displacement
    assert disp.shape == (1, ndim, *shape[2:]) and torch.isfinite(disp).all()
    assert m.cfg.affine_size == [64] * ndim


def test_vtn_trains_one_step_with_a_finite_loss(tmp_path):
    data = smooth_shift_pairs(2, 32)
    m = build_method("vtn", 2, {**SMALL, "n_cascades": 2, "iterations": 1, "log_every": 1, "batch_size": 2}, CPU)
    summary = m.fit(data, tmp_path / "log.csv")
    assert summary["iterations"] == 1 and np.isfinite(summary["loss_last_10pct"])
    assert "affine" in m.nets and m.cfg.affine_size == [64, 64]


def test_vtn_registers_a_shift_better_than_identity():
    """Smooth random images shifted by 2 voxels along axis 0: after a short fit the field points
    about 2 voxels back and the warped image is much closer to the fixed one."""
    data = smooth_shift_pairs()
    torch.manual_seed(0)
    m = build_method("vtn", 2, {"channels": 4, "affine_channels": 2, "n_cascades": 1, "iterations": 30,
                                "lr": 1e-3, "batch_size": 2, "log_every": 1000, "inter_subject": False}, CPU)
    summary, before, after, shift = fit_known_shift(m, data, 8)
    assert summary["loss_last_10pct"] < summary["loss_first_10pct"]
    assert after < 0.3 * before
    assert -2.6 < shift < -1.4      # b(x) = a(x - 2): u ~ -2 on axis 0


def test_vtn_saves_and_loads(tmp_path):
    data = smooth_shift_pairs(2, 32)
    m = build_method("vtn", 2, {**SMALL, "n_cascades": 2, "iterations": 1, "batch_size": 1}, CPU)
    m.fit(data)
    m.save(tmp_path)
    back = load_method(tmp_path, CPU)
    assert back.cfg.affine_size == [64, 64] and back.cfg.n_cascades == 2
    assert_same_weights(m, back)
    x, y = seeded((1, 1, 32, 32), 3), seeded((1, 1, 32, 32), 4)
    assert torch.equal(m.register(x, y).displacement, back.register(x, y).displacement)
