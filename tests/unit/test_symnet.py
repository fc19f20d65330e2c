"""SYMNet: network, maps and loss against fixtures from the official code
(`benchmarks/symnet_fidelity.py --write-fixtures tests/fixtures/symnet`), and the method."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg import spatial
from diffreg.errors import InputError
from diffreg.methods import build_method, load_method
from diffreg.methods.symnet import neg_jacobian

from .synthetic import assert_same_weights, fit_known_shift, seeded, smooth_shift_pairs

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "symnet"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "symnet_small.pt", weights_only=True)




@pytest.mark.parametrize("integration", ["full", "half"])
def test_symnet_equals_the_official_code(fixture, integration):
    """float64 (the fixture's references are the official code's float64 outputs): velocities,
    phi_XY and every loss term of Train_sym_onepass.py."""
    fx = fixture[integration]
    # the fixture names the smoothness weight as the method did when it was written: lambda_smooth
    lambdas = {("lambda_reg" if k == "lambda_smooth" else k): v for k, v in fx["lambdas"].items()}
    m = build_method("symnet", 3, dict(start_channel=fixture["start_channel"], integration=integration,
                                       **lambdas), CPU)
    net = m.nets["net"].double()
    net.load_state_dict(fixture["state"], strict=True)
    x, y = (seeded(tuple(fixture["shape"]), s).double() for s in fixture["seeds"][1:])
    with torch.no_grad():
        v_xy, v_yx = net(x, y)
        terms = m.terms(net, x, y)
        phi = m.register(x, y).displacement
    assert (v_xy - fixture["v"]["v_xy"]).abs().max() < 1e-5
    assert (v_yx - fixture["v"]["v_yx"]).abs().max() < 1e-5
    assert (phi - fx["phi_xy"]).abs().max() < 1e-5
    for k, ref in fx["terms"].items():
        assert terms[k].item() == pytest.approx(ref, rel=1e-5, abs=1e-9), k


def test_neg_jacobian_counts_only_folds():
    """x -> x / 2 has det 1/4 > 0 everywhere: no penalty; x0 -> -2 x0 has det -2: penalty 2."""
    shape = (1, 2, 6, 7)
    ident = spatial.identity_grid(shape[2:])
    assert neg_jacobian(0.5 * ident - ident).item() == 0.0        # x -> 0.5 x
    u = ident.clone() * 0
    u[:, 0] = -3 * ident[:, 0]                                      # x0 -> -2 x0: det = -2
    assert neg_jacobian(u).item() == pytest.approx(2.0)


@pytest.mark.parametrize("ndim,shape", [(2, (2, 1, 24, 40)), (3, (2, 1, 16, 20, 12))])
def test_symnet_maps_pairs_to_fields_of_the_right_shape(ndim, shape):
    m = build_method("symnet", ndim, {"start_channel": 2}, CPU)
    x, y = seeded(shape, 1), seeded(shape, 2)
    maps = m.maps(m.nets["net"], x, y)
    for k in ("v_xy", "half_xy", "phi_xy", "phi_yx"):
        assert maps[k].shape == (shape[0], ndim, *shape[2:]), k
    disp = m.register(x[:1], y[:1]).displacement
    assert disp.shape == (1, ndim, *shape[2:]) and torch.isfinite(disp).all()


def test_symnet_settings():
    m = build_method("symnet", 3, {}, CPU)
    c = m.cfg
    assert (c.lambda_jdet, c.lambda_reg, c.lambda_mag, c.time_steps, c.integration, c.lr) == \
        (1000.0, 3.0, 0.1, 7, "half", 1e-4)
    with pytest.raises(InputError, match="integration"):
        build_method("symnet", 2, {"integration": "quarter"}, CPU)


def test_symnet_trains_one_step_with_a_finite_loss(tmp_path):
    data = smooth_shift_pairs(2, 32)
    m = build_method("symnet", 2, {"start_channel": 2, "iterations": 1, "log_every": 1}, CPU)
    summary = m.fit(data, tmp_path / "log.csv")
    assert summary["iterations"] == 1 and np.isfinite(summary["loss_last_10pct"])


def test_symnet_registers_a_shift_better_than_identity():
    """Smooth random images shifted by 2 voxels along axis 0: after a short fit the field points
    about 2 voxels back and the warped image is closer to the fixed one."""
    data = smooth_shift_pairs()
    torch.manual_seed(0)
    m = build_method("symnet", 2, {"start_channel": 4, "iterations": 150, "lr": 2e-3, "batch_size": 2,
                                   "log_every": 1000, "inter_subject": False}, CPU)
    summary, before, after, shift = fit_known_shift(m, data, 8)
    assert summary["loss_last_10pct"] < summary["loss_first_10pct"]
    assert after < 0.6 * before
    assert -2.6 < shift < -1.0      # b(x) = a(x - 2): u ~ -2 on axis 0


def test_symnet_saves_and_loads(tmp_path):
    m = build_method("symnet", 2, {"start_channel": 2, "integration": "full"}, CPU)
    m.save(tmp_path)
    back = load_method(tmp_path, CPU)
    assert back.cfg.integration == "full"
    assert_same_weights(m, back)
    x, y = seeded((1, 1, 16, 16), 3), seeded((1, 1, 16, 16), 4)
    assert torch.equal(m.register(x, y).displacement, back.register(x, y).displacement)
