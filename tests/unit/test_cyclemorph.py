"""CycleMorph: networks and loss against fixtures from the official code
(`benchmarks/cyclemorph_fidelity.py --write-fixtures tests/fixtures/cyclemorph`), and the method."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.errors import InputError
from diffreg.methods import build_method, load_method
from diffreg.methods.cyclemorph import apply

from .synthetic import assert_same_weights, fit_known_shift, seeded, smooth_shift_pairs

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "cyclemorph"
CPU = torch.device("cpu")
TINY = {"encoder_nc": [4, 8, 8, 8, 8], "decoder_nc": [8, 8, 8, 4, 4]}


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "cyclemorph_small.pt", weights_only=True)




def test_cyclemorph_equals_the_official_code(fixture):
    """The official backward_G's fields, cycle image and four loss terms (3D, random weights)."""
    m = build_method("cyclemorph", 3, {**fixture["widths"], **fixture["lambdas"]}, CPU)
    m.nets["G_A"].load_state_dict(fixture["state_A"], strict=True)
    m.nets["G_B"].load_state_dict(fixture["state_B"], strict=True)
    a, b = (seeded(tuple(fixture["shape"]), s) for s in fixture["seeds"][2:])
    with torch.no_grad():
        terms = m.terms(m.nets["G_A"], m.nets["G_B"], a, b)
        fake_b, flow_a = apply(m.nets["G_A"], a, b)
        fake_a, _ = apply(m.nets["G_B"], b, a)
        back_a, _ = apply(m.nets["G_B"], fake_b, fake_a)
        disp = m.register(a, b).displacement
    assert (flow_a - fixture["flow_A"]).abs().max() < 1e-5
    assert (disp - fixture["flow_A"]).abs().max() < 1e-5
    assert (back_a - fixture["back_A"]).abs().max() < 1e-5
    for k, ref in fixture["terms"].items():
        assert terms[k].item() == pytest.approx(ref, rel=1e-5), k


def test_cyclemorph_official_init_starts_near_the_identity():
    m = build_method("cyclemorph", 2, {}, CPU)
    x = seeded((1, 1, 32, 32), 1)
    flow = m.register(x, seeded((1, 1, 32, 32), 2)).displacement
    bias = m.nets["G_A"].model.outconv.upconv.bias.detach().view(1, 2, 1, 1)
    assert (flow - bias).abs().max() < 1e-3            # N(0, 1e-5) weights: the field is the last bias
    c = m.cfg
    assert (c.alpha, c.beta, c.lambda_reg, c.lr, c.adam_betas()) == (0.1, 0.5, 1.0, 2e-4, (0.9, 0.999))
    assert build_method("cyclemorph", 2, {"betas": "official"}, CPU).cfg.adam_betas() == (0.5, 0.999)
    with pytest.raises(InputError, match="betas"):
        build_method("cyclemorph", 2, {"betas": "sgd"}, CPU)


def test_cyclemorph_identity_and_cycle_terms_vanish_for_zero_fields():
    """With both fields zero: warps are copies (up to float32 rounding of the sampling grid), so the
    cycle term is ~0, the regulariser 0, and the identity term the similarity of each image with itself."""
    m = build_method("cyclemorph", 2, TINY, CPU)
    for net in m.nets.values():
        for p in net.parameters():
            torch.nn.init.zeros_(p)
    a, b = seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2)
    t = m.terms(m.nets["G_A"], m.nets["G_B"], a, b)
    assert t["cycle"].item() < 1e-5 and t["regulariser"].item() == 0
    expected = -(m.ncc.similarity(a, a) + m.ncc.similarity(b, b))
    assert t["identity"].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("ndim,shape", [(2, (2, 1, 24, 40)), (3, (2, 1, 16, 20, 12))])
def test_cyclemorph_maps_pairs_to_fields_of_the_right_shape(ndim, shape):
    m = build_method("cyclemorph", ndim, TINY, CPU)
    warped, flow = apply(m.nets["G_A"], seeded(shape, 1), seeded(shape, 2))
    assert flow.shape == (shape[0], ndim, *shape[2:]) and warped.shape == shape
    disp = m.register(seeded((1, *shape[1:]), 1), seeded((1, *shape[1:]), 2)).displacement
    assert disp.shape == (1, ndim, *shape[2:])


def test_cyclemorph_trains_one_step_with_a_finite_loss(tmp_path):
    m = build_method("cyclemorph", 2, {**TINY, "iterations": 1, "log_every": 1}, CPU)
    summary = m.fit(smooth_shift_pairs(2, 32), tmp_path / "log.csv")
    assert summary["iterations"] == 1 and np.isfinite(summary["loss_last_10pct"])


def test_cyclemorph_registers_a_shift_better_than_identity():
    data = smooth_shift_pairs()
    torch.manual_seed(0)
    m = build_method("cyclemorph", 2, {**TINY, "iterations": 150, "lr": 3e-3, "batch_size": 2,
                                       "log_every": 1000, "inter_subject": False}, CPU)
    summary, before, after, shift = fit_known_shift(m, data, 8)
    assert summary["loss_last_10pct"] < summary["loss_first_10pct"]
    assert after < 0.6 * before
    assert -2.6 < shift < -1.0      # b(x) = a(x - 2): u ~ -2 on axis 0


def test_cyclemorph_saves_and_loads(tmp_path):
    m = build_method("cyclemorph", 2, {**TINY, "alpha": 0.2}, CPU)
    m.save(tmp_path)
    back = load_method(tmp_path, CPU)
    assert back.cfg.alpha == 0.2 and set(back.nets) == {"G_A", "G_B"}
    assert_same_weights(m, back)
    x, y = seeded((1, 1, 16, 16), 3), seeded((1, 1, 16, 16), 4)
    assert torch.equal(m.register(x, y).displacement, back.register(x, y).displacement)
