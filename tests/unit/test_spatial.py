"""diffreg.spatial against analytical answers, in 2D and 3D."""
import numpy as np
import pytest
import torch
from scipy.linalg import expm

from diffreg import spatial

pytestmark = pytest.mark.filterwarnings("ignore:monai.networks.blocks.Warp")

SHAPES = {2: (20, 24), 3: (12, 14, 16)}
# smooth-data tests need a few voxels per unit of curvature to keep linear interpolation error small
SMOOTH_SHAPES = {2: (40, 44), 3: (24, 26, 28)}


def smooth_field(shape, amp, seed, dtype=torch.float64, vanish_at_border=False):
    """Smooth displacement (1, D, *shape): per channel a random low-frequency sinusoid (about one
    period across the grid), scaled so that max |u| = amp."""
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    grid = spatial.identity_grid(shape, dtype=dtype)[0]
    rel = [grid[d] / (n - 1) for d, n in enumerate(shape)]
    chans = []
    for _ in range(ndim):
        k = rng.uniform(0.5, 1.0, ndim) * rng.choice([-1, 1], ndim)
        phase = sum(2 * np.pi * k[d] * rel[d] for d in range(ndim)) + rng.uniform(0, 2 * np.pi)
        chans.append(torch.sin(phase))
    u = torch.stack(chans)[None]
    if vanish_at_border:
        for d in range(ndim):
            u = u * torch.sin(np.pi * rel[d]) ** 2
    return amp * u / u.abs().max()


def linear_field(A, t, shape, dtype=torch.float64):
    """u(x) = A x + t as (1, D, *shape)."""
    grid = spatial.identity_grid(shape, dtype=dtype)[0]
    A = torch.as_tensor(A, dtype=dtype)
    t = torch.as_tensor(t, dtype=dtype)
    return (torch.einsum("ij,j...->i...", A, grid) + t.view(-1, *([1] * len(shape))))[None]


@pytest.mark.parametrize("ndim", [2, 3])
def test_identity_grid_holds_voxel_indices(ndim):
    shape = SHAPES[ndim]
    g = spatial.identity_grid(shape)
    assert g.shape == (1, ndim) + shape
    idx = np.indices(shape)
    assert np.array_equal(g[0].numpy(), idx.astype(np.float32))


@pytest.mark.parametrize("ndim", [2, 3])
def test_identity_warp_is_exact(ndim):
    shape = SHAPES[ndim]
    img = torch.rand((2, 3) + shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    zero = torch.zeros((2, ndim) + shape, dtype=torch.float64)
    assert torch.allclose(spatial.warp(img, zero), img, rtol=0, atol=1e-12)
    # float32 only loses the normalise/unnormalise round trip of grid_sample (a few ulps)
    assert torch.allclose(spatial.warp(img.float(), zero.float()), img.float(), rtol=0, atol=5e-6)
    labels = torch.randint(0, 50, (1, 1) + shape, generator=torch.Generator().manual_seed(1))
    out = spatial.warp(labels, zero[:1].float(), mode="nearest")
    assert out.dtype == labels.dtype and torch.equal(out, labels)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_integer_shift_moves_by_that_shift_with_border_padding(ndim, mode):
    shape = SHAPES[ndim]
    shift = [3, -2, 1][:ndim]
    img = torch.rand((1, 1) + shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    disp = torch.zeros((1, ndim) + shape, dtype=torch.float64)
    for d, s in enumerate(shift):
        disp[:, d] = s
    out = spatial.warp(img, disp, mode=mode)[0, 0].numpy()
    # out(x) = img(x + s); outside the grid the border rule repeats the edge voxel
    idx = np.indices(shape)
    src = tuple(np.clip(idx[d] + shift[d], 0, shape[d] - 1) for d in range(ndim))
    np.testing.assert_allclose(out, img[0, 0].numpy()[src], rtol=0, atol=1e-12)


def test_zeros_padding_option():
    img = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    disp = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    disp[:, 0] = 10.0
    assert spatial.warp(img, disp, padding="zeros").abs().max() == 0
    assert torch.equal(spatial.warp(img, disp), img)


def test_warp_numpy_matches_torch_and_keeps_label_dtype():
    shape = SHAPES[3]
    rng = np.random.default_rng(0)
    img = rng.random(shape)
    disp = smooth_field(shape, 2.0, seed=3)[0].numpy()
    ref = spatial.warp(torch.from_numpy(img)[None, None], torch.from_numpy(disp)[None])[0, 0].numpy()
    np.testing.assert_allclose(spatial.warp_numpy(img, disp), ref, atol=1e-12)
    labels = rng.integers(0, 5, shape).astype(np.uint16)
    out = spatial.warp_numpy(labels, disp, mode="nearest")
    assert out.dtype == np.uint16 and out.shape == shape
    assert set(np.unique(out)) <= set(np.unique(labels))


def test_warp_broadcasts_a_single_image_over_a_batch_of_fields():
    img = torch.rand(1, 1, 10, 12)
    disp = torch.zeros(3, 2, 10, 12)
    assert spatial.warp(img, disp).shape == (3, 1, 10, 12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_compose_order_on_linear_fields_is_exact(ndim):
    """compose(u, v)(x) = v(x) + u(x + v(x)); with linear u = A x + a, v = B x + b that is
    (A + B + A B) x + A b + a + b. A and B do not commute, so the order is tested."""
    shape = SHAPES[ndim]
    rng = np.random.default_rng(ndim)
    A = 0.05 * rng.standard_normal((ndim, ndim))
    B = 0.05 * rng.standard_normal((ndim, ndim))
    centre = (np.array(shape) - 1) / 2
    a = -A @ centre  # fields vanish at the centre: sample points stay inside near it
    b = -B @ centre
    u, v = linear_field(A, a, shape), linear_field(B, b, shape)
    got = spatial.compose(u, v)
    want = linear_field(A + B + A @ B, A @ b + a + b, shape)
    swapped = linear_field(A + B + B @ A, B @ a + a + b, shape)
    inner = tuple([slice(None), slice(None)] + [slice(3, n - 3) for n in shape])
    assert torch.allclose(got[inner], want[inner], atol=1e-10)
    assert not torch.allclose(got[inner], swapped[inner], atol=1e-4)
    # the warp identity on a linear image: warp(warp(m, u), v) == warp(m, compose(u, v))
    m = (spatial.identity_grid(shape, dtype=torch.float64) * torch.arange(1, ndim + 1).view(1, -1, *[1] * ndim)).sum(1, keepdim=True)
    two = spatial.warp(spatial.warp(m, u), v)
    one = spatial.warp(m, got)
    assert torch.allclose(two[inner], one[inner], atol=1e-10)


@pytest.mark.parametrize("ndim", [2, 3])
def test_compose_agrees_with_sequential_warps_on_smooth_data(ndim):
    shape = SMOOTH_SHAPES[ndim]
    u = smooth_field(shape, 1.5, seed=4, vanish_at_border=True)
    v = smooth_field(shape, 1.5, seed=5, vanish_at_border=True)
    img = smooth_field(shape, 1.0, seed=6)[:, :1]
    two = spatial.warp(spatial.warp(img, u), v)
    one = spatial.warp(img, spatial.compose(u, v))
    # only interpolation error remains (image amplitude 1): max 0.05, mean 0.005
    assert (two - one).abs().max() < 0.05
    assert (two - one).abs().mean() < 0.005


@pytest.mark.parametrize("ndim", [2, 3])
def test_scaling_and_squaring_of_linear_velocity_is_matrix_exponential(ndim):
    shape = SHAPES[ndim]
    rng = np.random.default_rng(10 + ndim)
    A = 0.06 * rng.standard_normal((ndim, ndim))
    centre = (np.array(shape) - 1) / 2
    v = linear_field(A, -A @ centre, shape)
    u = spatial.integrate_velocity(v, steps=8)
    E = expm(A) - np.eye(ndim)
    want = linear_field(E, -E @ centre, shape)
    inner = tuple([slice(None), slice(None)] + [slice(4, n - 4) for n in shape])
    # (I + A/2^8)^(2^8) differs from expm(A) by O(|A|^2 / 2^8 * |x|): bound 1e-3 voxel
    assert (u[inner] - want[inner]).abs().max() < 1e-3
    # a constant velocity integrates to itself
    c = torch.full((1, ndim) + shape, 0.7, dtype=torch.float64)
    assert torch.allclose(spatial.integrate_velocity(c), c, atol=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_integrate_velocity_agrees_with_monai_dvf2ddf(ndim):
    from monai.networks.blocks import DVF2DDF

    shape = SHAPES[ndim]
    v = smooth_field(shape, 3.0, seed=7, dtype=torch.float32, vanish_at_border=True)
    ours = spatial.integrate_velocity(v, steps=7)
    theirs = DVF2DDF(num_steps=7)(v)
    # field vanishes at the border, so MONAI's zero padding and our border padding coincide
    assert (ours - theirs).abs().max() < 1e-4


@pytest.mark.parametrize("ndim", [2, 3])
def test_warp_agrees_with_monai_warp(ndim):
    from monai.networks.blocks import Warp

    shape = SHAPES[ndim]
    img = torch.rand((2, 2) + shape, generator=torch.Generator().manual_seed(8))
    disp = torch.cat([smooth_field(shape, 4.0, seed=9 + i, dtype=torch.float32) for i in range(2)])
    for mode, monai_mode in [("linear", "bilinear"), ("nearest", "nearest")]:
        ours = spatial.warp(img, disp, mode=mode)
        theirs = Warp(mode=monai_mode, padding_mode="border")(img, disp)
        assert (ours - theirs).abs().max() < 1e-5


@pytest.mark.parametrize("ndim", [2, 3])
def test_field_composed_with_its_inverse_is_identity(ndim):
    shape = SMOOTH_SHAPES[ndim]
    u = smooth_field(shape, 1.0, seed=11, vanish_at_border=True)  # min det J ~ 0.6-0.8
    w = spatial.invert(u, iterations=100, tol=1e-8)
    # the fixed point solves compose(u, w) = 0 on the grid: residual < 1e-6 voxel
    assert spatial.compose(u, w).abs().max() < 1e-6
    # the other side only up to interpolation of w: bound 0.1 voxel
    assert spatial.compose(w, u).abs().max() < 0.1
    # the inverse of a constant shift is the opposite shift
    c = torch.full((1, ndim) + SHAPES[ndim], 1.25, dtype=torch.float64)
    assert torch.allclose(spatial.invert(c), -c, atol=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_resize_field_rescales_values(ndim):
    shape = SHAPES[ndim]
    new = tuple(2 * n - 1 for n in shape)
    c = torch.ones((1, ndim) + shape, dtype=torch.float64)
    r = spatial.resize_field(c, new)
    assert r.shape == (1, ndim) + new
    # align_corners geometry: (2n - 2) / (n - 1) = 2 exactly on every axis
    assert torch.allclose(r, 2 * torch.ones_like(r), atol=1e-12)
    # a linear field in voxel coordinates stays the same linear field in the new voxel coordinates
    A = np.diag([0.1] * ndim)
    lin = spatial.resize_field(linear_field(A, np.zeros(ndim), shape), new)
    assert torch.allclose(lin, linear_field(A, np.zeros(ndim), new), atol=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_jacobian_of_affine_field_is_matrix_determinant(ndim):
    shape = SHAPES[ndim]
    rng = np.random.default_rng(20 + ndim)
    M = np.eye(ndim) + 0.3 * rng.standard_normal((ndim, ndim))
    u = linear_field(M - np.eye(ndim), rng.standard_normal(ndim), shape)
    det = spatial.jacobian_determinant(u)
    assert det.shape == (1,) + shape
    assert torch.allclose(det, torch.full_like(det, np.linalg.det(M)), atol=1e-10)
    det_np = spatial.jacobian_determinant(u[0].numpy())
    assert isinstance(det_np, np.ndarray)
    np.testing.assert_allclose(det_np, np.linalg.det(M), atol=1e-10)
    J = spatial.jacobian_matrix(u[0].numpy())
    np.testing.assert_allclose(J[(0,) * ndim], M, atol=1e-10)


def test_warp_is_differentiable_in_image_and_field():
    img = torch.rand(1, 1, 12, 12, requires_grad=True)
    disp = (0.5 * torch.randn(1, 2, 12, 12)).requires_grad_()
    spatial.warp(img, disp).sum().backward()
    assert img.grad.abs().sum() > 0 and disp.grad.abs().sum() > 0


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        spatial.warp(torch.rand(1, 1, 8, 8), torch.zeros(1, 2, 8, 9))
    with pytest.raises(ValueError):
        spatial.warp(torch.rand(1, 1, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError):
        spatial.warp(torch.rand(1, 1, 8, 8), torch.zeros(1, 2, 8, 8), mode="cubic")
    with pytest.raises(ValueError, match="nearest"):
        spatial.warp(torch.ones(1, 1, 8, 8, dtype=torch.int64), torch.zeros(1, 2, 8, 8))
