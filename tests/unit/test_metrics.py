"""Metrics against hand-computed answers."""
import math

import numpy as np
import pytest

from diffreg import metrics


def linear_field(M, shape):
    """u(x) = (M - I) x as (D, *shape)."""
    idx = np.indices(shape).astype(np.float64)
    return np.einsum("ij,j...->i...", np.asarray(M) - np.eye(len(shape)), idx)


# ---------------------------------------------------------------------------- Dice
def test_dice_known_overlap_and_absent_label_rule():
    a = np.zeros((10, 10), np.int32)
    b = np.zeros((10, 10), np.int32)
    a[0:4, 0:5] = 1          # 20 voxels
    b[2:6, 0:5] = 1          # 20 voxels, overlap 2 x 5 = 10
    a[8, 8] = 2              # label 2 only in a
    d = metrics.dice_per_label(a, b, labels=[1, 2, 3])
    assert d[1] == pytest.approx(2 * 10 / 40)
    assert d[2] == 0.0                  # present in one map only: 0
    assert math.isnan(d[3])             # absent from both: NaN
    assert metrics.mean_dice(a, b, labels=[1, 2, 3]) == pytest.approx((0.5 + 0.0) / 2)
    assert metrics.dice_per_label(a, a) == {1: 1.0, 2: 1.0}
    assert math.isnan(metrics.mean_dice(a, b, labels=[7]))


def test_dice_3d_identical_and_disjoint():
    a = np.zeros((6, 6, 6), np.uint8)
    b = np.zeros_like(a)
    a[:3] = 1
    b[3:] = 1
    assert metrics.dice_per_label(a, b) == {1: 0.0}
    assert metrics.dice_per_label(a, a) == {1: 1.0}


# ---------------------------------------------------------------------------- Jacobian statistics
@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_field_jacobian_summary(ndim):
    shape = (12,) * ndim
    M = np.diag([1.5] + [1.0] * (ndim - 1))
    s = metrics.summary_jacobian(linear_field(M, shape))
    assert s["det_min"] == pytest.approx(1.5) and s["det_max"] == pytest.approx(1.5)
    assert s["folding_percent"] == 0.0
    assert s["sdlogj"] == pytest.approx(0.0, abs=1e-12)
    # a reflection folds every voxel
    R = np.diag([-1.0] + [1.0] * (ndim - 1))
    assert metrics.folding_percent(linear_field(R, shape)) == 100.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_constructed_fold_is_counted(ndim):
    """phi_0 along axis 0 runs 0..10, back down 9, 8, 7, 6, then up again 7, 8, ... Central
    differences at rows 10..14 are 0, -1, -1, -1, 0 (det <= 0), so 5 of 24 rows fold."""
    n = 24
    phi0 = np.concatenate([np.arange(11), [9, 8, 7, 6], 7 + np.arange(n - 15)]).astype(float)
    shape = (n,) + (8,) * (ndim - 1)
    u = np.zeros((ndim,) + shape)
    u[0] = (phi0 - np.arange(n)).reshape((n,) + (1,) * (ndim - 1))
    assert metrics.folding_percent(u) == pytest.approx(100.0 * 5 / n)
    mask = np.zeros(shape, bool)
    mask[10:15] = True
    assert metrics.folding_percent(u, mask=mask) == 100.0


def test_sdlogj_known_value():
    """Slope 2 on rows 0..9, 0.5 on rows 10..19 of phi_0: central differences give det 2 on rows
    0..9 (row 0 one-sided), (0.5 + 2) / 2 = 1.25 at the kink row 10 and 0.5 on rows 11..19."""
    n = 20
    phi0 = np.concatenate([2.0 * np.arange(11), 20 + 0.5 * np.arange(1, n - 10)])
    u = np.zeros((2, n, 6))
    u[0] = (phi0 - np.arange(n))[:, None]
    dets = np.array([2.0] * 10 + [1.25] + [0.5] * 9)
    assert metrics.sdlogj(u) == pytest.approx(np.std(np.log(dets)), rel=1e-12)
    assert metrics.summary_jacobian(u)["det_mean"] == pytest.approx(dets.mean())


# ---------------------------------------------------------------------------- HD95
def test_hd95_single_voxels_in_voxels_and_mm():
    a = np.zeros((12, 12, 12), np.int32)
    b = np.zeros_like(a)
    a[2, 3, 4] = 1
    b[5, 7, 4] = 1
    assert metrics.hd95_per_label(a, b)[1] == pytest.approx(5.0)            # |(3, 4, 0)|
    assert metrics.hd95_per_label(a, b, spacing=(2.0, 1.0, 1.0))[1] == pytest.approx(np.hypot(6, 4))
    assert metrics.hd95_per_label(a, a)[1] == 0.0


def test_hd95_percentile_convention_and_absent_label():
    """A = {p, q} with |p - q| = 10, B = {p}: directed distances A->B are {0, 10}, B->A {0};
    the linear-interpolation 95th percentile of {0, 10} is 9.5."""
    a = np.zeros((16, 16), np.int32)
    b = np.zeros_like(a)
    a[2, 2] = a[12, 2] = 1
    b[2, 2] = 1
    b[8, 8] = 2
    h = metrics.hd95_per_label(a, b, labels=[1, 2, 3])
    assert h[1] == pytest.approx(9.5)
    assert math.isnan(h[2]) and math.isnan(h[3])


# ---------------------------------------------------------------------------- NJD / JSD (forward differences)
def test_njd_and_jsd_forward_differences():
    """phi_0 = 0, 1, 2, 1.5, 3, 4, ...: forward differences 1, 1, -0.5, 1.5, 1, ...: one of n - 1
    rows folds; JSD is the std of those slopes."""
    n = 10
    phi0 = np.array([0, 1, 2, 1.5, 3, 4, 5, 6, 7, 8], float)
    u = np.zeros((2, n, 5))
    u[0] = (phi0 - np.arange(n))[:, None]
    slopes = np.diff(phi0)
    assert metrics.njd(u) == pytest.approx(100.0 / (n - 1))
    assert metrics.jsd(u) == pytest.approx(np.std(slopes))
    # central differences see (1.5 - 1) / 2 > 0 and (3 - 2) / 2 > 0 there: no fold
    assert metrics.folding_percent(u) == 0.0


# ---------------------------------------------------------------------------- digital diffeomorphism
@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_field_passes_every_strict_variant(ndim):
    rng = np.random.default_rng(ndim)
    M = np.eye(ndim) + 0.2 * rng.standard_normal((ndim, ndim))
    dets = metrics.strict_jacobian_determinants(linear_field(M, (8,) * ndim))
    assert len(dets) == (4 if ndim == 2 else 10)
    for v in dets.values():
        np.testing.assert_allclose(v[(slice(1, -1),) * ndim], np.linalg.det(M), atol=1e-10)
    assert metrics.nondiffeomorphic(linear_field(M, (8,) * ndim))["ndv"] == 0.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_checkerboard_fold_caught_by_strict_but_not_central(ndim):
    """u = c (-1)^(sum x) (1, ..., 1): central differences cancel (det J = 1 inside), but at every
    voxel one one-sided variant has det 1 - 2 D c < 0. With D c = 0.6: det -0.2, so the
    non-diffeomorphic volume per voxel is 0.5 * 0.2 / D! (5% in 2D, 1/60 = 1.67% in 3D)."""
    shape = (10,) * ndim
    c = 0.6 / ndim
    sign = (-1.0) ** np.indices(shape).sum(0)
    u = np.stack([c * sign] * ndim)
    inner = np.zeros(shape, bool)
    inner[(slice(1, -1),) * ndim] = True
    assert metrics.folding_percent(u, mask=inner) == 0.0
    res = metrics.nondiffeomorphic(u, mask=inner)
    assert res["strict_percent"] == 100.0
    assert res["ndv_percent"] == pytest.approx(100 * 0.5 * 0.2 / (2 if ndim == 2 else 6))


# ---------------------------------------------------------------------------- image metrics
def test_psnr_nmse_ssim_known_values():
    ref = np.full((16, 16), 0.5)
    img = ref + 0.1
    assert metrics.psnr(img, ref) == pytest.approx(20.0)          # 10 log10(1 / 0.01)
    assert metrics.nmse(img, ref) == pytest.approx(0.01 / 0.25)
    assert metrics.psnr(ref, ref) == float("inf")
    rng = np.random.default_rng(0)
    x = rng.random((24, 24))
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    # constant images: SSIM reduces to the luminance term (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    c1 = 0.01 ** 2
    assert metrics.ssim(ref, img) == pytest.approx((2 * 0.5 * 0.6 + c1) / (0.25 + 0.36 + c1))
    assert metrics.ssim(rng.random((12, 12, 12)), rng.random((12, 12, 12))) < 0.3


def test_summary_jacobian_has_every_statistic():
    u = np.zeros((3, 6, 6, 6))
    s = metrics.summary_jacobian(u)
    assert s == {"folding_percent": 0.0, "sdlogj": 0.0, "det_min": 1.0, "det_max": 1.0, "det_mean": 1.0,
                 "njd": 0.0, "jsd": 0.0, "strict_percent": 0.0, "ndv_percent": 0.0}
