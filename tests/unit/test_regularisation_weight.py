"""`lambda_reg` is every method's regularisation weight (docs/engine.md, "Loss weights"): a paper's
own symbol is accepted as an alias and renamed, and each loss weighs its regulariser by lambda_reg.
The loss checks feed a made-up field whose regulariser value is known in closed form."""
import json
from types import SimpleNamespace

import pytest
import torch

from diffreg.errors import InputError
from diffreg.losses import build_regulariser
from diffreg.methods import METHODS, build_method, check_config, load_method
from diffreg.methods.diffusemorph import DiffuseMorphConfig
from diffreg.methods.gradicon import gradicon_terms, icon_lncc
from diffreg.methods.m2m_reg import M2MRegConfig, m2m_terms

CPU = torch.device("cpu")
A = 0.5                 # slope of the made-up field u_0 = A x_0 (voxels per voxel)
SHAPE = (16, 16)


def linear_field(shape=SHAPE, components=(0,), dtype=torch.float32) -> torch.Tensor:
    """(1, D, *shape): the listed components equal A x_0, the others 0."""
    ndim = len(shape)
    x0 = torch.arange(shape[0], dtype=dtype).view(-1, *([1] * (ndim - 1))).expand(shape)
    u = torch.zeros(1, ndim, *shape, dtype=dtype)
    for c in components:
        u[0, c] = A * x0
    return u


def grad_l2(components: int, ndim: int = 2) -> float:
    """Grad-l2 (mean over axes of the mean squared forward difference) of linear_field: only the
    differences along axis 0 are non-zero, A in each of `components` of the D components."""
    return A ** 2 * components / ndim / ndim


def test_every_method_calls_its_regularisation_weight_lambda_reg():
    for name in METHODS.names():
        config = METHODS.get(name).Config
        fields = set(config.__dataclass_fields__)
        assert "lambda_reg" in fields, name
        assert not fields & {"lambda_smooth", "lambda_phi", "lmbda"}, name


def test_a_papers_symbol_is_an_alias_of_lambda_reg():
    cfg = DiffuseMorphConfig.from_dict({"network": "small", "lambda_phi": 2.5}, 2, "diffusemorph")
    assert cfg.lambda_reg == 2.5
    assert "lambda_phi" not in cfg.to_dict() and cfg.to_dict()["lambda_reg"] == 2.5   # run.json, config.json
    assert DiffuseMorphConfig.from_dict({"lambda_phi": None}, 2, "diffusemorph").lambda_reg == 1.0  # unset
    check_config("diffusemorph", 3, {"lambda_phi": 1.0})            # a YAML may use it
    with pytest.raises(InputError, match="unknown setting"):          # only where the paper prints it
        check_config("symnet", 3, {"lambda_phi": 1.0})


def test_an_alias_beside_its_setting_is_refused_in_one_line():
    with pytest.raises(InputError) as err:
        build_method("diffusemorph", 2, {"network": "small", "lambda_phi": 1.0, "lambda_reg": 2.0}, CPU)
    assert str(err.value) == ("settings lambda_phi and lambda_reg for method diffusemorph: lambda_phi is another "
                              "name for lambda_reg, give one of them")


def test_pairwise_loss_weighs_its_regulariser_by_lambda_reg():
    for lam in (1.0, 2.0):
        m = build_method("voxelmorph", 2, {"backbone": "voxelmorph", "backbone_kwargs": {"variant": "vm1"},
                                           "similarity": "mse", "lambda_reg": lam}, CPU)
        img = torch.rand(1, 1, *SHAPE)
        t = m.objective(None)({"net": lambda x: linear_field()}, (img, img))     # the made-up field
        assert t["regulariser"].item() == pytest.approx(grad_l2(1))
        assert (t["loss"] - t["similarity"]).item() == pytest.approx(lam * grad_l2(1))


@pytest.mark.parametrize("method", ["diffusemorph", "fsdiffreg"])
def test_diffusion_methods_weigh_smoothness_by_lam_times_lambda_reg(method):
    """The smoothness term inside the registration loss: lam x lambda_reg x Grad-l2(phi); doubling
    lambda_reg doubles it and leaves the other terms."""
    m, f = torch.rand(1, 1, *SHAPE) * 2 - 1, torch.rand(1, 1, *SHAPE) * 2 - 1
    noise, t = torch.randn(1, 1, *SHAPE), torch.tensor([5])
    flow = linear_field()
    if method == "diffusemorph":
        nets = {"unet": lambda x, t: torch.zeros_like(m), "field": lambda x: ((m + 1) / 2, flow)}
    else:
        nets = {"unet": lambda x, t: (torch.zeros_like(m), flow)}
    terms = {}
    for lam in (1.0, 2.0):
        meth = build_method(method, 2, {"network": "small", "lam": 3.0, "lambda_reg": lam}, CPU)
        terms[lam] = meth.loss_terms(nets, m, f, noise, t)
        assert terms[lam]["smooth"].item() == pytest.approx(3.0 * lam * grad_l2(1))
    assert (terms[2.0]["loss"] - terms[1.0]["loss"]).item() == pytest.approx(3.0 * grad_l2(1), rel=1e-5)
    assert terms[2.0]["sim"].item() == pytest.approx(terms[1.0]["sim"].item())


def test_symnet_weighs_velocity_smoothness_by_lambda_reg():
    """v_XY with every component A x_0 (to_voxels flips the components and scales by range_flow),
    v_YX = 0: smooth = Grad-l2(v_XY) = A^2 / D."""
    x, y = torch.rand(1, 1, *SHAPE), torch.rand(1, 1, *SHAPE)
    for lam in (1.0, 2.0):
        m = build_method("symnet", 2, {"lambda_reg": lam}, CPU)
        v = linear_field(components=(0, 1)) / m.cfg.range_flow

        def net(xp, yp):
            return v, torch.zeros_like(v)
        t = m.terms(net, x, y)
        assert t["smooth"].item() == pytest.approx(grad_l2(2))
        rest = t["sim_mid"] + t["sim_full"] + m.cfg.lambda_mag * t["magnitude"] + m.cfg.lambda_jdet * t["jdet"]
        assert (t["loss"] - rest).item() == pytest.approx(lam * grad_l2(2), rel=1e-5)


def test_gradicon_weighs_its_inverse_consistency_term_by_lambda_reg():
    """phi_AB(x) = s x, phi_BA = id: the ICON error is (1 - s) eps, its finite-difference gradient
    (1 - s) on the diagonal, so the term is sum_d mean (1 - s)^2 [component d] = (1 - s)^2."""
    s = 0.8
    a, b = torch.rand(1, 1, *SHAPE, dtype=torch.float64), torch.rand(1, 1, *SHAPE, dtype=torch.float64)

    def chain(x, y):
        return (lambda coords, *_: s * coords) if x is a else (lambda coords, *_: coords)
    lncc = icon_lncc(2).double()
    out = {lam: gradicon_terms(chain, a, b, lncc, lam, sparse=False) for lam in (1.0, 2.0)}
    assert out[1.0]["icon"].item() == pytest.approx((1 - s) ** 2, rel=1e-6)
    assert (out[2.0]["loss"] - out[1.0]["loss"]).item() == pytest.approx((1 - s) ** 2, rel=1e-6)
    cfg = build_method("gradicon", 2, {"lambda_reg": 0.5, "backbone_kwargs": {"down": [2, 4], "up": [4]},
                                       "levels": 0}, CPU).cfg
    assert cfg.lambda_reg == 0.5            # what GradICONObjective passes as the weight


def test_cyclemorph_weighs_both_fields_smoothness_by_lambda_reg():
    x, y = torch.rand(1, 1, *SHAPE), torch.rand(1, 1, *SHAPE)
    g_a = SimpleNamespace(field=lambda inp: linear_field())          # made-up phi_XY; phi_YX = 0
    g_b = SimpleNamespace(field=lambda inp: torch.zeros(1, 2, *SHAPE))
    for lam in (1.0, 2.0):
        m = build_method("cyclemorph", 2, {"lambda_reg": lam}, CPU)
        t = m.terms(g_a, g_b, x, y)
        assert t["regulariser"].item() == pytest.approx(grad_l2(1))
        rest = t["similarity"] + m.cfg.alpha * t["cycle"] + m.cfg.beta * t["identity"]
        assert (t["loss"] - rest).item() == pytest.approx(lam * grad_l2(1), rel=1e-5)


def test_vtn_weighs_each_cascades_variation_by_lambda_reg():
    """One cascade, no affine stem: the code's regularize_loss of u_0 = A x_0 on 16^2 (the network
    sees the images padded to 64^2) is (15 x 16 A^2) / 2 / (2 x 16^2)."""
    x, y = torch.rand(1, 1, *SHAPE), torch.rand(1, 1, *SHAPE)
    known = 15 * 16 * A ** 2 / 2 / (2 * 16 * 16)
    for lam in (1.0, 2.0):
        m = build_method("vtn", 2, {"lambda_reg": lam, "n_cascades": 1, "affine": False, "channels": 4}, CPU)
        t = m.terms({"deform0": lambda inp: linear_field(tuple(inp.shape[2:]))}, x, y)
        assert t["reg"].item() == pytest.approx(known)
        assert (t["loss"] - t["similarity"]).item() == pytest.approx(lam * known, rel=1e-5)


def test_ldm_morph_weighs_the_official_smoothness_by_lambda_reg():
    """beta 1 (no latent term), no LDM features: loss = MSE + lambda_reg x smoothness; u_0 = A x_0 in
    normalised units has the official smoothloss (A h / 2)^2 / 2 / 2 on an h x w grid."""
    img = torch.rand(1, 1, *SHAPE)
    known = (A * SHAPE[0] / 2) ** 2 / 2 / 2
    for lam in (0.01, 0.02):
        m = build_method("ldm_morph", 2, {"lambda_reg": lam, "beta": 1.0, "features": False, "lgca": False,
                                          "network": "small"}, CPU)
        t = m.loss_terms({"net": lambda mm, ff, feats: linear_field()}, img, img)
        assert (t["loss"] - t["pixel"]).item() == pytest.approx(lam * known, rel=1e-5)


def test_diffusereg_weighs_grad_l2_of_the_denoised_field_by_lambda_reg():
    """With the field statistics' std 0 the denoised field is their mean: the made-up field."""
    shape = (8, 8, 8)
    flow = linear_field(shape)
    stats = SimpleNamespace(mean=flow, std=torch.zeros(1, 3, 1, 1, 1))
    nets = {"field_stats": stats, "denoiser": lambda inp, t: torch.zeros(1, 3, *shape)}
    img = torch.rand(1, 1, *shape)
    out = {}
    for lam in (0.1, 0.2):
        m = build_method("diffusereg", 3, {"lambda_reg": lam, "use_phi0": False, "network": "small"}, CPU)
        torch.manual_seed(0)
        out[lam] = m.loss_terms(nets, img, img)
        assert out[lam]["reg"].item() == pytest.approx(grad_l2(1, ndim=3))
    assert (out[0.2]["loss"] - out[0.1]["loss"]).item() == pytest.approx(0.1 * grad_l2(1, ndim=3), rel=1e-4)


def test_m2m_reg_weighs_the_backbones_regulariser_by_lambda_reg():
    """Voxel backbone (regulariser diffusion on phi_AB's displacement), no L_gcc: loss = L_m2m +
    lambda_reg Grad-l2(u_AB); the maps are the identity, u_AB the made-up field."""
    batch = {k: torch.rand(1, 1, *SHAPE, dtype=torch.float64) for k in ("A", "B", "Ac", "Bc")}

    def mapper(x, y):
        disp = linear_field(dtype=torch.float64) if (x is batch["A"] and y is batch["B"]) else \
            torch.zeros(1, 2, *SHAPE, dtype=torch.float64)
        return (lambda coords: coords), disp
    for lam in (0.01, 0.02):
        cfg = M2MRegConfig.from_dict({"backbone": "transmorph", "regulariser": "diffusion", "lambda_reg": lam,
                                      "lambda_gcc": 0.0}, 2, "m2m_reg")
        t = m2m_terms(mapper, batch, icon_lncc(2).double(), cfg, False, build_regulariser("diffusion"))
        assert t["reg"].item() == pytest.approx(grad_l2(1))
        assert (t["loss"] - t["m2m"]).item() == pytest.approx(lam * grad_l2(1), rel=1e-5)


@pytest.mark.parametrize("reg_scale", ["official", "voxel"])
def test_dgir_weighs_its_regulariser_by_lambda_reg_derived_from_lam(reg_scale):
    """lam (Eq. 4) -> lambda_reg: "official" takes it as is on the official regulariser (phi - id in
    [0, 1] coordinates times N_0: u_0 = A x_0 gives (A 16 / 15)^2 / D); "voxel" takes lam x D on
    Grad-l2 (A^2 / D^2)."""
    img = torch.rand(1, 1, *SHAPE)
    known = (A * 16 / 15) ** 2 / 2 if reg_scale == "official" else grad_l2(1)
    for lam in (0.5, 1.0):
        m = build_method("dgir", 2, {"loss": "mse", "network": "small", "lam": lam, "reg_scale": reg_scale}, CPU)
        assert m.cfg.lambda_reg == (lam if reg_scale == "official" else 2 * lam)
        t = m.objective(None)({"net": lambda x: linear_field()}, (img, img))
        assert t["regulariser"].item() == pytest.approx(known)
        assert (t["loss"] - t["similarity"]).item() == pytest.approx(m.cfg.lambda_reg * known, rel=1e-5)


@pytest.mark.parametrize("method,former,config", [
    ("symnet", "lambda_smooth", {"start_channel": 2}),
    ("gradicon", "lmbda", {"backbone_kwargs": {"down": [2, 4], "up": [4]}, "levels": 0}),
    ("fsdiffreg", "lambda_phi", {"network": "small", "unet_kwargs": {"channel_mults": [1, 2]}}),
])
def test_model_folders_saved_under_a_former_name_still_load(tmp_path, method, former, config):
    m = build_method(method, 2, {**config, "lambda_reg": 0.25}, CPU)
    m.save(tmp_path)
    desc = json.loads((tmp_path / "config.json").read_text())
    desc["config"][former] = desc["config"].pop("lambda_reg")          # as written before the rename
    (tmp_path / "config.json").write_text(json.dumps(desc))
    assert load_method(tmp_path, CPU).cfg.lambda_reg == 0.25
    with pytest.raises(InputError, match=f"unknown setting\\(s\\) {former} "):   # new configs use lambda_reg
        build_method(method, 2, {**config, former: 0.25}, CPU)
