"""DiffuseMorph: the networks against fixtures saved from the official code
(`benchmarks/diffusemorph.py --write-fixtures tests/fixtures/diffusemorph`), the joint
loss, the continuous trajectory and the generative process."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.errors import InputError
from diffreg.losses.similarity import LNCC
from diffreg.methods import build_method
from diffreg.methods.diffusemorph import DiffuseMorph
from diffreg.training.training_set import TrainingSet
from diffreg.nets.diffusemorph_field import OFFICIAL as FIELD, DeformationUNet
from diffreg.nets.sr3_unet import OFFICIAL as UNET, SR3UNet

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "diffusemorph"
sys.path.insert(0, str(ROOT / "benchmarks"))
from diffusemorph import seeded  # noqa: E402  (the benchmark's input generator)

CPU = torch.device("cpu")
TINY = {"network": "small", "unet_kwargs": {"channel_mults": [1, 2]},
        "field_kwargs": {"encoder_nc": [4, 4, 4, 4, 4], "decoder_nc": [4, 4, 4, 4, 4, 2]}}


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "networks_small.pt", weights_only=True)


@pytest.mark.parametrize("nd", [2, 3])
def test_official_state_dicts_load_strictly_and_give_the_official_outputs(fixture, nd):
    fx = fixture[f"{nd}d"]
    unet, fld = SR3UNet(nd, **fx["unet"]), DeformationUNet(nd, **fx["field"])
    unet.load_state_dict(fx["unet_state"], strict=True)
    fld.load_state_dict(fx["field_state"], strict=True)
    unet.eval(), fld.eval()
    shape = tuple(fx["eps"].shape[2:])
    m, f, xt, _ = (seeded((1, 1, *shape), s) for s in fx["seeds"])
    with torch.no_grad():
        eps = unet(torch.cat([m, f, xt], 1), torch.tensor([fx["t"]]))
        warped, flow = fld(torch.cat([m, fx["eps"]], 1))
    assert (eps - fx["eps"]).abs().max().item() <= 1e-5
    assert (flow - fx["flow"]).abs().max().item() <= 1e-5
    assert (warped - fx["warped"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("nd", [2, 3])
def test_joint_loss_equals_the_official_p_losses(fixture, nd):
    fx = fixture[f"{nd}d"]
    method = DiffuseMorph(nd, {"network": "small", "lam": 20.0, "unet_kwargs": fx["unet"],
                               "field_kwargs": fx["field"]}, CPU)
    method.nets["unet"].load_state_dict(fx["unet_state"], strict=True)
    method.nets["field"].load_state_dict(fx["field_state"], strict=True)
    method.nets.eval()
    shape = tuple(fx["eps"].shape[2:])
    m, f = seeded((1, 1, *shape), fx["seeds"][0]), seeded((1, 1, *shape), fx["seeds"][1])
    noise = torch.randn((1, 1, *shape), generator=torch.Generator().manual_seed(fx["seeds"][3]))
    with torch.no_grad():
        terms = method.loss_terms(method.nets, m, f, noise, torch.tensor([fx["t"]]))
    for k in ("pix", "sim", "smooth", "loss"):
        assert abs(terms[k].item() - fx["loss"][k]) <= 1e-5 * max(1.0, abs(fx["loss"][k])), k


@pytest.mark.parametrize("nd", [2, 3])
def test_full_size_networks_have_the_official_names_and_shapes(nd):
    names = json.loads((FIX / "official_names.json").read_text())[f"{nd}d"]
    with torch.device("meta"):
        unet, fld = SR3UNet(nd, **UNET[nd]), DeformationUNet(nd, **FIELD[nd])
    assert [[k, list(v.shape)] for k, v in unet.state_dict().items()] == names["unet"]
    assert [[k, list(v.shape)] for k, v in fld.state_dict().items()] == names["field"]


def test_squared_ncc_product_form_is_voxelmorphs_window_sum_formula():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 1, 12, 12, generator=g), torch.rand(1, 1, 12, 12, generator=g)
    n = 9 * 9
    ones = torch.ones(1, 1, 9, 9)
    s = lambda x: torch.nn.functional.conv2d(x, ones, padding=4)  # noqa: E731
    cross = s(a * b) - s(a) * s(b) / n
    var_a, var_b = s(a * a) - s(a) ** 2 / n, s(b * b) - s(b) ** 2 / n
    expected = (cross * cross / (var_a * var_b + 1e-5)).mean()
    ncc = LNCC("box", size=9, squared=True, border="zeros", eps=1e-5 / n ** 2, eps_form="product")
    assert ncc.similarity(a, b).item() == pytest.approx(expected.item(), rel=1e-4)
    # an affine copy has cc^2 = 1 wherever the window lies inside the image (zeros pad the border)
    inner = ncc.cc_map(a, 2 * a + 1)[..., 4:-4, 4:-4]
    assert (inner - 1).abs().max().item() <= 1e-4
    with pytest.raises(ValueError, match="squared=True only"):
        LNCC(eps_form="product")


def _pair(shape=(16, 16), shift=2):
    y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    img = lambda c: np.exp(-((y - c[0]) ** 2 + (x - c[1]) ** 2) / 18.0).astype(np.float32)  # noqa: E731
    return img((7, 7)), img((7 + shift, 7))


def test_trajectory_eta_zero_one_and_the_registration_field():
    torch.manual_seed(0)
    mov, fix = (torch.from_numpy(a)[None, None] for a in _pair())
    method = DiffuseMorph(2, {**TINY, "etas": [0.0, 0.5, 1.0]}, CPU)
    with torch.no_grad():
        for p in method.nets["field"].outconv.parameters():     # a non-trivial field at eta = 0
            p.add_(0.05)
    fields = method.trajectory(mov, fix, [0.0, 0.5, 1.0])
    m = 2 * mov - 1
    e = method.latent(m, 2 * fix - 1)
    with torch.no_grad():
        at0 = method.nets["field"].field(torch.cat([m, torch.zeros_like(e)], 1))
        at1 = method.nets["field"].field(torch.cat([m, e], 1))
    torch.testing.assert_close(fields[0], at0)                  # paper / code: phi_0 = M(m, 0)
    assert fields[0].abs().max() > 1e-3
    reg = method.register(mov, fix)
    torch.testing.assert_close(reg.displacement, at1)           # eta = 1 is the registration (Eq. 10)
    assert len(reg.trajectory) == 3
    anchored = DiffuseMorph(2, {**TINY, "eta0": "anchored"}, CPU)
    anchored.nets.load_state_dict(method.nets.state_dict())
    f0, f1 = anchored.trajectory(mov, fix, [0.0, 1.0])
    assert f0.abs().max().item() <= 1e-6                        # exactly the identity
    torch.testing.assert_close(f1, at1 - at0)


def test_generation_with_zero_steps_is_the_forward_diffused_moving_image():
    mov, fix = (torch.from_numpy(a)[None, None] for a in _pair())
    method = DiffuseMorph(2, TINY, CPU)
    out = method.generate(mov, fix, t_gen=200, steps=0, generator=torch.Generator().manual_seed(3))
    noise = torch.randn(mov.shape, generator=torch.Generator().manual_seed(3))
    abar = method.scheduler.alphas_cumprod[200]
    expected = (abar.sqrt() * (2 * mov - 1) + (1 - abar).sqrt() * noise + 1) / 2
    torch.testing.assert_close(out, expected)
    # abar from T = 2000 linear betas 1e-6 .. 1e-2, in float64
    betas = np.linspace(1e-6, 1e-2, 2000)
    assert abar.item() == pytest.approx(np.prod(1 - betas[:201]), rel=1e-5)
    # the paper's 80 reverse steps from T = 200 cover 199 .. 0 (respaced); the code's 200 take every step
    seen = []
    unet_forward = method.nets["unet"].forward
    method.nets["unet"].forward = lambda x, t: (seen.append(int(t[0])), unet_forward(x, t))[1]
    method.generate(mov, fix, t_gen=200, steps=80)
    assert len(seen) == 80 and seen[0] == 199 and seen[-1] == 0 and seen == sorted(seen, reverse=True)
    seen.clear()
    method.generate(mov, fix, t_gen=200, steps=200)
    assert seen == list(range(199, -1, -1))
    method.nets["unet"].forward = unet_forward
    # ancestral and DDIM reverse steps run and stay finite
    for sampler in ("ddpm", "ddim"):
        img = method.generate(mov, fix, t_gen=20, steps=4, sampler=sampler, generator=torch.Generator().manual_seed(1))
        assert img.shape == mov.shape and torch.isfinite(img).all()


def test_one_training_step_updates_both_networks_with_the_chosen_betas(capsys):
    a, b = _pair()
    data = TrainingSet(["s0", "s1"], [a, b], [b, a])
    method = build_method("diffusemorph", 2, {**TINY, "iterations": 1, "batch_size": 1, "lr": 1e-3,
                                              "betas": "official"}, CPU)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    summary = method.fit(data)
    after = method.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"unet", "field"}
    assert summary["betas"] == "official" and np.isfinite(summary["loss_last_10pct"])
    from diffreg.training.trainer import Trainer
    assert method.cfg.adam_betas() == (0.5, 0.999)
    assert Trainer  # the loop is the shared one (training.trainer)


def test_settings_defaults_and_errors():
    c2 = DiffuseMorph(2, TINY, CPU).config
    c3 = DiffuseMorph(3, {"network": "small"}, CPU).config
    assert (c2["lam"], c2["lr"], c3["lam"], c3["lr"]) == (2.0, 5e-6, 20.0, 2e-4)   # official configs
    assert (c2["timesteps"], c2["beta_start"], c2["beta_end"], c2["lambda_reg"]) == (2000, 1e-6, 1e-2, 1.0)
    with pytest.raises(InputError, match="eta0 = 'zero'"):
        DiffuseMorph(2, {**TINY, "eta0": "zero"}, CPU)
    with pytest.raises(InputError, match="every eta"):
        DiffuseMorph(2, {**TINY, "etas": [0, 1.5]}, CPU)
    with pytest.raises(InputError, match="2D or 3D"):
        DiffuseMorph(4, {}, CPU)
