"""Similarities and regularisers against known answers, MONAI where it has the same operation,
and gradient flow into a network through every registered loss."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffreg import spatial
from diffreg.losses import REGULARISERS, SIMILARITIES, build_regulariser, build_similarity

SHAPES = {2: (32, 32), 3: (16, 16, 16)}


def textured(shape, seed=0, channels=1, batch=1):
    """Random image in [0, 1] smoothed a little: texture everywhere, so local variances are > 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((batch, channels) + tuple(shape), generator=g, dtype=torch.float64)
    ndim = len(shape)
    pool = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    x = pool(x, 3, stride=1, padding=1, count_include_pad=False)
    return (x - x.min()) / (x.max() - x.min())


def grid_coords(shape):
    return spatial.identity_grid(shape, dtype=torch.float64)


# ---------------------------------------------------------------------------- MSE
def test_mse_known_value():
    a = torch.zeros(1, 1, 4, 4)
    b = torch.full((1, 1, 4, 4), 0.5)
    mse = build_similarity("mse")
    assert torch.isclose(mse(a, b), torch.tensor(0.25))
    assert torch.isclose(mse.similarity(a, b), torch.tensor(-0.25))


# ---------------------------------------------------------------------------- LNCC
LNCC_CONFIGS = [
    dict(window="box", size=5),
    dict(window="box", size=9),
    dict(window="gaussian", sigma=2.0),
    dict(window="gaussian", size=7),
]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("cfg", LNCC_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_lncc_of_image_with_itself_is_one_and_affine_invariant(ndim, cfg):
    a = textured(SHAPES[ndim], seed=1, channels=2)
    b = textured(SHAPES[ndim], seed=2, channels=2)
    for squared in (False, True):
        lncc = build_similarity("lncc", squared=squared, **cfg)
        assert abs(lncc.similarity(a, a).item() - 1.0) < 1e-6
        assert abs(lncc(a, a).item()) < 1e-6
        base = lncc.similarity(a, b).item()
        assert abs(lncc.similarity(2.5 * a + 0.3, b).item() - base) < 1e-6
        assert abs(lncc.similarity(a, 0.2 * b - 4.0).item() - base) < 1e-6
    signed = build_similarity("lncc", **cfg)
    # cc is odd under a negative gain
    assert abs(signed.similarity(a, 1.0 - a).item() + 1.0) < 1e-6
    assert abs(signed.similarity(-3 * a + 1, b).item() + signed.similarity(a, b).item()) < 1e-6


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kernel_type, window", [("rectangular", "box"), ("gaussian", "gaussian")])
@pytest.mark.parametrize("size", [3, 9])
def test_lncc_agrees_with_monai(ndim, kernel_type, window, size):
    from monai.losses import LocalNormalizedCrossCorrelationLoss

    a = textured(SHAPES[ndim], seed=3, channels=2, batch=2).float()
    b = textured(SHAPES[ndim], seed=4, channels=2, batch=2).float()
    theirs = LocalNormalizedCrossCorrelationLoss(spatial_dims=ndim, kernel_size=size, kernel_type=kernel_type)(a, b)
    ours = build_similarity("lncc", window=window, size=size, squared=True, border="zeros")(a, b)
    # ours = 1 - mean cc^2, MONAI = -mean cc^2; same zero-padded window moments
    assert abs(ours.item() - (1.0 + theirs.item())) < 1e-5


def test_lncc_known_value_on_opposite_ramps():
    x = grid_coords((16, 16))[:, :1]
    lncc = build_similarity("lncc", window="box", size=5)
    assert abs(lncc.similarity(x, -x).item() + 1.0) < 1e-6


# ---------------------------------------------------------------------------- regularisers
@pytest.mark.parametrize("ndim", [2, 3])
def test_diffusion_known_value(ndim):
    """u_0 = a x_0, other channels 0: forward differences along axis 0 are a in channel 0 and 0
    elsewhere; mean over (channels, voxels) = a^2 / D for axis 0, 0 for the others, then the mean
    over D axes: a^2 / D^2."""
    a = 0.3
    shape = SHAPES[ndim]
    u = torch.zeros((1, ndim) + shape, dtype=torch.float64)
    u[:, 0] = a * grid_coords(shape)[:, 0]
    assert abs(build_regulariser("diffusion")(u).item() - a * a / ndim ** 2) < 1e-12
    const = torch.full((1, ndim) + shape, 2.0)
    assert build_regulariser("diffusion")(const).item() == 0.0


# ---------------------------------------------------------------------------- gradients
class TinyNet(torch.nn.Module):
    """Two conv layers mapping (B, 2, *S) -> displacement (B, D, *S)."""

    def __init__(self, ndim):
        super().__init__()
        conv = torch.nn.Conv2d if ndim == 2 else torch.nn.Conv3d
        self.a = conv(2, 4, 3, padding=1)
        self.b = conv(4, ndim, 3, padding=1)

    def forward(self, x):
        return 2.0 * self.b(torch.tanh(self.a(x)))


def _assert_grads(net):
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# the entries diffreg.losses registers itself; feature extractors registered elsewhere (diffusion,
# autoencoder, VGG, DINO) need weights or models and are tested with their own modules
CORE_SIMILARITIES = ["mse", "lncc", "ngf", "mind", "mi", "ssim", "feature"]
CORE_REGULARISERS = ["diffusion", "bending", "gradicon", "gradcycon"]


def test_core_entries_are_registered():
    assert set(CORE_SIMILARITIES) <= set(SIMILARITIES.names())
    assert set(CORE_REGULARISERS) <= set(REGULARISERS.names())


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", CORE_SIMILARITIES)
def test_gradients_reach_the_network_through_every_similarity(ndim, name):
    torch.manual_seed(0)
    shape = SHAPES[ndim]
    net = TinyNet(ndim)
    moving = textured(shape, seed=5).float()
    fixed = textured(shape, seed=6).float()
    sim = build_similarity(name, **SIMILARITY_TEST_KWARGS.get(name, {}))
    u = net(torch.cat([moving, fixed], 1))
    loss = sim(spatial.warp(moving, u), fixed)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    _assert_grads(net)


class _FeatureNet(torch.nn.Module):
    """A small extractor for either dimensionality (picked at first call)."""

    def __init__(self):
        super().__init__()
        self.c2 = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.c3 = torch.nn.Conv3d(1, 3, 3, padding=1)

    def forward(self, x):
        return torch.tanh((self.c2 if x.ndim == 4 else self.c3)(x))


# keyword arguments a similarity needs to be built in a test (e.g. a feature extractor)
SIMILARITY_TEST_KWARGS: dict = {"feature": {"extractor": _FeatureNet(), "window": "box", "size": 5}}


def _call_regulariser(reg, name, net, x):
    u = net(x)
    if name in ("gradicon",):
        return reg(u, net(x.flip(1)))
    if name in ("gradcycon",):
        return reg([u, net(x.flip(1))])
    return reg(u)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", CORE_REGULARISERS)
def test_gradients_reach_the_network_through_every_regulariser(ndim, name):
    torch.manual_seed(0)
    shape = SHAPES[ndim]
    net = TinyNet(ndim)
    x = torch.cat([textured(shape, seed=7), textured(shape, seed=8)], 1).float()
    loss = _call_regulariser(build_regulariser(name), name, net, x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    _assert_grads(net)


# ---------------------------------------------------------------------------- NGF, MIND, MI, SSIM
@pytest.mark.parametrize("ndim", [2, 3])
def test_ngf_invariant_to_intensity_inversion_and_self_is_near_one(ndim):
    a = textured(SHAPES[ndim], seed=9)
    b = textured(SHAPES[ndim], seed=10)
    ngf = build_similarity("ngf", eps=1e-3)
    base = ngf.similarity(a, b).item()
    assert abs(ngf.similarity(1.0 - a, b).item() - base) < 1e-12
    assert abs(ngf.similarity(a, 1.0 - b).item() - base) < 1e-12
    # self: |g|^4 / (|g|^2 + eps^2)^2, close to 1 where gradients dominate eps
    assert ngf.similarity(a, a).item() > 0.99
    assert ngf.similarity(a, a).item() > base + 0.3


def test_ngf_known_value_on_orthogonal_ramps():
    """grad x0 and grad x1 are orthogonal: similarity 0; parallel ramps with eps -> 0: 1."""
    g = grid_coords((16, 16))
    ngf = build_similarity("ngf", eps=1e-6)
    assert abs(ngf.similarity(g[:, :1], g[:, 1:]).item()) < 1e-12
    assert abs(ngf.similarity(g[:, :1], 3 * g[:, :1]).item() - 1.0) < 1e-9


@pytest.mark.parametrize("ndim, pairs", [(2, 4), (3, 12)])
def test_mind_descriptor_shape_and_inversion_invariance(ndim, pairs):
    from diffreg.losses import mind_ssc
    from diffreg.losses.mind import ssc_pairs

    assert len(ssc_pairs(ndim)) == pairs
    a = textured(SHAPES[ndim], seed=11, channels=2)
    b = textured(SHAPES[ndim], seed=12, channels=2)
    desc = mind_ssc(a)
    assert desc.shape == (1, 2 * pairs) + SHAPES[ndim]
    assert desc.max() <= 1.0 and desc.min() > 0.0
    # every voxel has a pair at distance min_pq D, whose descriptor is exactly 1
    assert torch.allclose(desc.view(1, 2, pairs, *SHAPES[ndim]).amax(2), torch.ones(1, dtype=desc.dtype))
    assert torch.allclose(mind_ssc(1.0 - a), desc, atol=1e-12)
    assert torch.allclose(mind_ssc(4.0 * a + 2.0), desc, atol=1e-10)
    mind = build_similarity("mind")
    assert mind(a, a).item() == 0.0
    assert abs(mind(1.0 - a, b).item() - mind(a, b).item()) < 1e-12
    assert mind(a, b).item() > 0.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_mutual_information_known_properties(ndim):
    a = textured(SHAPES[ndim], seed=13).float()
    b = textured(SHAPES[ndim], seed=14).float()
    mi = build_similarity("mi")
    self_mi = mi.similarity(a, a).item()
    # inversion maps the symmetric bin centres onto each other: MI unchanged
    assert abs(mi.similarity(a, 1.0 - a).item() - self_mi) < 1e-4
    assert self_mi > 1.0 and mi.similarity(a, b).item() < 0.2 * self_mi
    assert mi(a, b).item() == pytest.approx(-mi.similarity(a, b).item())


@pytest.mark.parametrize("ndim, win", [(2, 11), (3, 9)])
def test_ssim_agrees_with_monai_and_self_is_one(ndim, win):
    from monai.losses import SSIMLoss

    a = textured(SHAPES[ndim], seed=15, channels=2, batch=2).float()
    b = textured(SHAPES[ndim], seed=16, channels=2, batch=2).float()
    ssim = build_similarity("ssim", win_size=win)
    theirs = SSIMLoss(spatial_dims=ndim, win_size=win, kernel_sigma=1.5)(a, b)
    assert abs(ssim(a, b).item() - theirs.item()) < 1e-5
    assert abs(ssim.similarity(a, a).item() - 1.0) < 1e-6


def test_bending_energy_known_values_and_monai_agreement():
    """u_0 = a x_0^2: d2u_0/dx_0^2 = 2a, energy 4a^2 in channel 0, mean over 3 channels 4a^2/3;
    u_0 = a x_0 x_1: mixed derivative a counted twice: 2a^2/3."""
    from monai.losses import BendingEnergyLoss

    a = 0.1
    g = grid_coords((10, 10, 10))[0]
    u = torch.zeros(1, 3, 10, 10, 10, dtype=torch.float64)
    u[0, 0] = a * g[0] ** 2
    bend = build_regulariser("bending")
    assert bend(u).item() == pytest.approx(4 * a * a / 3, rel=1e-12)
    u[0, 0] = a * g[0] * g[1]
    assert bend(u).item() == pytest.approx(2 * a * a / 3, rel=1e-12)
    v = torch.randn(2, 3, 10, 10, 10, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI indexes with lists (deprecated by torch)
        theirs = BendingEnergyLoss()(v).item()
    assert bend(v).item() == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_gradicon_and_gradcycon_known_values(ndim):
    from diffreg.losses import compose_chain

    shape = SHAPES[ndim]
    shifts = [torch.full((1, ndim) + shape, t, dtype=torch.float64) for t in (1.5, -0.5, -1.0)]
    assert build_regulariser("gradicon")(shifts[0], -shifts[0]).item() == pytest.approx(0.0, abs=1e-20)
    assert build_regulariser("gradcycon")(shifts).item() == pytest.approx(0.0, abs=1e-20)
    # u = (A) x composed with zero: |grad|^2 per direction averaged over components -> |A|_F^2 / D
    A = torch.tensor(np.random.default_rng(0).normal(0, 0.1, (ndim, ndim)))
    lin = torch.einsum("ij,j...->i...", A, grid_coords(shape)[0])[None]
    zero = torch.zeros_like(lin)
    want = (A ** 2).sum().item() / ndim
    assert build_regulariser("gradicon")(lin, zero).item() == pytest.approx(want, rel=1e-10)
    assert build_regulariser("gradicon", symmetric=True)(lin, zero).item() == pytest.approx(want, rel=1e-10)
    # GradCyCon on a 2-cycle is GradICON; the chain composes u_1 o u_2 o u_3 (u_3 first)
    u = 0.5 * torch.sin(grid_coords(shape) / 3.0)
    v = 0.5 * torch.cos(grid_coords(shape) / 4.0)
    assert build_regulariser("gradcycon")([u, v]).item() == pytest.approx(
        build_regulariser("gradicon")(u, v).item(), rel=1e-12)
    assert torch.allclose(compose_chain([u, v, shifts[0]]), spatial.compose(u, spatial.compose(v, shifts[0])))


# ---------------------------------------------------------------------------- feature-space similarity
def test_feature_similarity_with_identity_extractor_is_lncc_and_freezes_weights():
    a = textured((24, 24), seed=17, channels=3)
    b = textured((24, 24), seed=18, channels=3)
    feat = build_similarity("feature", extractor=torch.nn.Identity(), measure="lncc", window="gaussian", sigma=2.0)
    lncc = build_similarity("lncc", window="gaussian", sigma=2.0)
    assert feat(a, b).item() == pytest.approx(lncc(a, b).item(), abs=1e-12)
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    cos = build_similarity("feature", extractor=conv, measure="cosine")
    assert all(not p.requires_grad for p in conv.parameters())
    cos.train()
    assert not conv.training
    x = textured((24, 24), seed=19).float()
    assert cos.similarity(x, x).item() == pytest.approx(1.0, abs=1e-6)
    # cosine of features (B, 1, ...) is sign(a) * sign(b): +-1 per voxel
    one = build_similarity("feature", extractor=torch.nn.Identity(), measure="cosine")
    s = torch.ones(1, 1, 4, 4)
    t = s.clone()
    t[..., :2, :] = -1
    assert one.similarity(s, t).item() == pytest.approx(0.0)


def test_feature_similarity_multi_scale_weights():
    a = textured((16, 16), seed=20)
    b = textured((16, 16), seed=21)
    ext = lambda x: [x, 2 * x + 1]  # noqa: E731  (LNCC-invariant second map)
    feat = build_similarity("feature", extractor=ext, weights=[1.0, 3.0], window="box", size=5)
    lncc = build_similarity("lncc", window="box", size=5)
    assert feat.similarity(a, b).item() == pytest.approx(lncc.similarity(a, b).item(), abs=1e-12)


def test_unknown_names_are_rejected_with_the_known_ones():
    with pytest.raises(KeyError, match="lncc"):
        build_similarity("nope")
    with pytest.raises(KeyError, match="diffusion"):
        build_regulariser("nope")
