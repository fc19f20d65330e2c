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
