"""`lambda_reg` is every method's regularisation weight (docs/engine.md, "Loss weights"): a paper's
own symbol is accepted as an alias and renamed, and each loss weighs its regulariser by lambda_reg.
The loss checks feed a made-up field whose regulariser value is known in closed form."""
import pytest
import torch

from diffreg.errors import InputError
from diffreg.methods import METHODS, build_method, check_config
from diffreg.methods.diffusemorph import DiffuseMorphConfig
from diffreg.methods.gradicon import gradicon_terms, icon_lncc

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
