"""FSDiffReg: the network and one training step against the official code's outputs
(`benchmarks/fsdiffreg_fidelity.py --write-fixtures tests/fixtures/fsdiffreg`; the weights are
regenerated from the benchmark's seed), the score-wise weighting, and the method."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.errors import InputError
from diffreg.methods import build_method, load_method
from diffreg.methods.diffusemorph import DiffuseMorph
from diffreg.methods.fsdiffreg import FSDiffReg
from diffreg.methods.pairs import pad_to_multiple
from diffreg.nets.fsdiffreg import OFFICIAL, FieldHead, FSDiffRegUNet

from .synthetic import assert_same_weights, fit_known_shift, smooth_shift_pairs

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "fsdiffreg"
sys.path.insert(0, str(ROOT / "benchmarks"))
from fsdiffreg_fidelity import randomise, seeded  # noqa: E402  (the benchmark's weights and inputs)

CPU = torch.device("cpu")
TINY = {"network": "small", "unet_kwargs": {"channel_mults": [1, 2]}}


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "fsdiffreg_small.pt", weights_only=True)


def _inputs(fx):
    shape = (1, 1, *fx["shape"])
    return tuple(seeded(shape, fx["seeds"][k]) for k in ("moving", "fixed", "xt", "noise"))


def test_network_gives_the_official_outputs(fixture):
    fx = fixture
    net = FSDiffRegUNet(3, **fx["unet"])
    randomise(net, fx["seeds"]["weights"])
    net.eval()
    m, f, xt, _ = _inputs(fx)
    with torch.no_grad():
        eps, field = net(torch.cat([m, f, xt], 1), torch.tensor([fx["t"]]))
    assert (eps - fx["eps"]).abs().max().item() <= 1e-5
    assert (field - fx["field"]).abs().max().item() <= 1e-5
    assert fx["field"].abs().max() > 1.0                  # fields of a few voxels: the warp is exercised


def test_training_step_and_registration_equal_the_official_code(fixture):
    fx = fixture
    method = build_method("fsdiffreg", 3, {"network": "small", "unet_kwargs": fx["unet"], "lam": fx["lam"],
                                           "gamma": fx["gamma"]}, CPU)
    randomise(method.nets["unet"], fx["seeds"]["weights"])
    method.nets.eval()
    m, f, _, noise = _inputs(fx)
    t = torch.tensor([fx["t"]])
    with torch.no_grad():
        terms = method.loss_terms(method.nets, m, f, noise, t)
        _, flow = method.nets["unet"](torch.cat([m, f, method.q_sample(f, t, noise)], 1), t)
    for k in ("loss", "sim", "smooth"):
        assert terms[k].item() == pytest.approx(fx["terms"][k], rel=1e-5, abs=1e-6), k
    assert (method.warp(m, flow) - fx["warped"]).abs().max().item() <= 1e-5
    reg = method.register((m + 1) / 2, (f + 1) / 2).displacement
    assert (reg - fx["reg_field"]).abs().max().item() <= 1e-5


def test_score_weight_is_sigmoid_of_eps_hat_to_the_gamma():
    """gamma = 0: weight 1, the similarity is DiffuseMorph's -lam mean NCC^2; gamma = 2: the cc map
    times sigmoid(eps-hat)^2, recomputed here from the same network outputs."""
    shape = (1, 1, 16, 16)
    m, f, noise = (seeded(shape, s) for s in (1, 2, 3))
    t = torch.tensor([50])
    for gamma in (0.0, 2.0):
        torch.manual_seed(0)
        method = build_method("fsdiffreg", 2, {**TINY, "gamma": gamma, "lam": 3.0}, CPU)
        with torch.no_grad():
            terms = method.loss_terms(method.nets, m, f, noise, t)
            eps, flow = method.nets["unet"](torch.cat([m, f, method.q_sample(f, t, noise)], 1), t)
            cc = method.ncc.cc_map(method.warp(m, flow), (f + 1) / 2)
        want = -3.0 * (cc * torch.sigmoid(eps) ** gamma).mean()
        assert terms["sim"].item() == pytest.approx(want.item(), rel=1e-6)
        if gamma == 0.0:
            assert terms["sim"].item() == pytest.approx(-3.0 * method.ncc.similarity(method.warp(m, flow),
                                                                                     (f + 1) / 2).item(), rel=1e-6)


def test_official_names_and_the_field_head_groups():
    net = FSDiffRegUNet(3, **OFFICIAL[3])
    keys = net.state_dict().keys()
    assert not any(k.startswith("ups.") for k in keys)
    for prefix in ("ups_diff.0.", "ups_regis.0.", "ups_adapt.0.defmgen.", "ups_adapt.0.nonlinear.",
                   "final_conv_defm.block.3."):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert net.final_conv_defm.block[0].num_groups == 3              # official: 8 + 1 = 9 channels
    assert FieldHead(2, 65).block[0].num_groups == 1                 # 2D official width: 64 + 1
    assert isinstance(FSDiffReg(3, {}, CPU), DiffuseMorph)           # reuses DiffuseMorph's pieces


@pytest.mark.parametrize("ndim,shape", [(2, (2, 1, 24, 40)), (3, (2, 1, 16, 20, 12))])
def test_fsdiffreg_maps_pairs_to_fields_of_the_right_shape(ndim, shape):
    method = build_method("fsdiffreg", ndim, TINY, CPU)
    m, f = seeded(shape, 1), seeded(shape, 2)
    mp, _ = pad_to_multiple(m, method.multiple)
    fp, _ = pad_to_multiple(f, method.multiple)
    eps, flow = method.nets["unet"](torch.cat([mp, fp, fp], 1), torch.zeros(shape[0], dtype=torch.long))
    assert eps.shape == (shape[0], 1, *mp.shape[2:]) and flow.shape == (shape[0], ndim, *mp.shape[2:])
    disp = method.register((m[:1] + 1) / 2, (f[:1] + 1) / 2).displacement
    assert disp.shape == (1, ndim, *shape[2:]) and torch.isfinite(disp).all()


def test_settings_defaults_and_errors():
    c = build_method("fsdiffreg", 3, {"network": "small"}, CPU).cfg
    assert (c.lam, c.lambda_reg, c.gamma, c.lr, c.betas, c.timesteps, c.batch_size) == \
        (20.0, 1.0, 1.0, 2e-4, "official", 2000, 1)
    assert c.adam_betas() == (0.5, 0.999)
    with pytest.raises(InputError, match="network"):
        build_method("fsdiffreg", 2, {"network": "huge"}, CPU)
    with pytest.raises(InputError, match="gamma"):
        build_method("fsdiffreg", 2, {**TINY, "gamma": -1.0}, CPU)
    with pytest.raises(InputError, match="unet_kwargs"):
        build_method("fsdiffreg", 2, {"network": "small", "unet_kwargs": {"inner_channel": 20}}, CPU)
    with pytest.raises(InputError, match="trajectory"):
        build_method("fsdiffreg", 2, TINY, CPU).trajectory(None, None, [0.5])


def test_fsdiffreg_trains_one_step_with_a_finite_loss(tmp_path):
    data = smooth_shift_pairs(2, 32)
    m = build_method("fsdiffreg", 2, {**TINY, "iterations": 1, "log_every": 1}, CPU)
    summary = m.fit(data, tmp_path / "log.csv")
    assert summary["iterations"] == 1 and np.isfinite(summary["loss_last_10pct"])


def test_fsdiffreg_registers_a_shift_better_than_identity():
    """Smooth random images shifted by 2 voxels along axis 0: after a short fit the field points
    about 2 voxels back and the warped image is much closer to the fixed one."""
    data = smooth_shift_pairs(6, 32)
    torch.manual_seed(0)
    m = build_method("fsdiffreg", 2, {**TINY, "iterations": 30, "lr": 3e-3, "batch_size": 2, "log_every": 1000,
                                      "inter_subject": False}, CPU)
    summary, before, after, shift = fit_known_shift(m, data, 6)
    assert summary["loss_last_10pct"] < summary["loss_first_10pct"]
    assert after < 0.3 * before
    assert -2.6 < shift < -1.2      # b(x) = a(x - 2): u ~ -2 on axis 0


def test_fsdiffreg_saves_and_loads(tmp_path):
    m = build_method("fsdiffreg", 2, {**TINY, "gamma": 2.0}, CPU)
    m.save(tmp_path)
    back = load_method(tmp_path, CPU)
    assert back.cfg.gamma == 2.0 and back.name == "fsdiffreg"
    assert_same_weights(m, back)
    x, y = seeded((1, 1, 16, 16), 3, 0, 1), seeded((1, 1, 16, 16), 4, 0, 1)
    assert torch.equal(m.register(x, y).displacement, back.register(x, y).displacement)
