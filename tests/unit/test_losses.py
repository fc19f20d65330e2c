"""Similarities and regularisers against known answers, MONAI where it has the same operation,
and gradient flow into a network through every registered loss."""
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
    a = textured(SHAPES[ndim], seed=1, channels=2, batch=2)
    b = textured(SHAPES[ndim], seed=2, channels=2, batch=2)
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


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", SIMILARITIES.names())
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


# keyword arguments a similarity needs to be built in a test (e.g. a feature extractor)
SIMILARITY_TEST_KWARGS: dict = {}


def _call_regulariser(reg, name, net, x):
    u = net(x)
    if name in ("gradicon",):
        return reg(u, net(x.flip(1)))
    if name in ("gradcycon",):
        return reg([u, net(x.flip(1))])
    return reg(u)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", REGULARISERS.names())
def test_gradients_reach_the_network_through_every_regulariser(ndim, name):
    torch.manual_seed(0)
    shape = SHAPES[ndim]
    net = TinyNet(ndim)
    x = torch.cat([textured(shape, seed=7), textured(shape, seed=8)], 1).float()
    loss = _call_regulariser(build_regulariser(name), name, net, x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    _assert_grads(net)


def test_unknown_names_are_rejected_with_the_known_ones():
    with pytest.raises(KeyError, match="lncc"):
        build_similarity("nope")
    with pytest.raises(KeyError, match="diffusion"):
        build_regulariser("nope")
