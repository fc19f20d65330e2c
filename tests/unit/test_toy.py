"""Embedded toy data: anatomy sources, random diffeomorphisms, determinism, file contents."""
from __future__ import annotations

import hashlib
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.data import deform
from diffreg.data.anatomy import HEAD_TO_MNI, _sample, build_template, load_sources
from diffreg.data.toy import LABELS, ToyConfig, generate, splits
from diffreg.errors import InputError


# ---- deformation helpers: analytic answers ----------------------------------------------------

def test_warp_integer_shift_moves_image():
    rng = np.random.default_rng(0)
    img = rng.random((12, 10, 8))
    u = np.zeros((3, 12, 10, 8))
    u[0] = 2.0  # out(x) = img(x + 2 e0)
    out = deform.warp(img, u)
    np.testing.assert_allclose(out[:-2], img[2:], atol=1e-12)
    np.testing.assert_allclose(out[-2:], np.broadcast_to(img[-1:], out[-2:].shape), atol=1e-12)  # border


def test_integrate_constant_velocity_is_translation():
    v = np.zeros((2, 20, 20))
    v[0], v[1] = 1.5, -0.75
    u = deform.integrate_velocity(v, steps=6)
    # exp of a constant field is the constant translation (exact away from the border)
    np.testing.assert_allclose(u[:, 4:-4, 4:-4], v[:, 4:-4, 4:-4], atol=1e-9)


def test_affine_displacement_and_composition():
    shape = (9, 7, 5)
    zero = deform.affine_displacement(shape, np.eye(3), np.zeros(3))
    assert np.abs(zero).max() == 0
    a = np.diag([2.0, 1.0, 1.0])
    u = deform.affine_displacement(shape, a, np.array([0.0, 1.0, 0.0]))
    # about the centre c = 4 along axis 0: y0 = 2(x0 - 4) + 4, so u0 = x0 - 4
    np.testing.assert_allclose(u[0, :, 0, 0], np.arange(9) - 4.0)
    np.testing.assert_allclose(u[1], 1.0)
    inner = np.zeros((3, *shape))
    inner[2] = 0.5
    comp = deform.compose_affine_after(inner, np.eye(3), np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(comp[0], 1.0)
    np.testing.assert_allclose(comp[2], 0.5)


def _jac_det_2d(u):
    d00 = np.gradient(u[0], axis=0) + 1
    d01 = np.gradient(u[0], axis=1)
    d10 = np.gradient(u[1], axis=0)
    d11 = np.gradient(u[1], axis=1) + 1
    return d00 * d11 - d01 * d10


def test_random_velocity_gives_diffeomorphism():
    rng = np.random.default_rng(1)
    v = deform.random_velocity((48, 48), rng, smoothness=5.0, magnitude=2.0)
    np.testing.assert_allclose(v.std(axis=(1, 2)), 2.0, rtol=1e-9)
    det = _jac_det_2d(deform.integrate_velocity(v))
    assert det.min() > 0  # no folding


# ---- anatomy ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template24():
    return build_template(24)


def test_head_atlas_is_aligned_to_mni():
    """The frozen HEAD_TO_MNI maps the ROBEX brain mask onto the MNI brain (Dice > 0.9);
    without it (identity) the overlap is clearly worse."""
    src = load_sources()
    from diffreg.data.anatomy import grid_affine
    aff = grid_affine(32)
    shape = (32, 32, 32)
    mni = _sample((src["t1"][0] > 0.2 * 255).astype(np.float32), src["t1"][1], np.eye(4), aff, shape) > 0.5

    def dice(m):
        return 2 * (m & mni).sum() / (m.sum() + mni.sum())

    robex = _sample(src["head_mask"][0], src["head_mask"][1], HEAD_TO_MNI, aff, shape) > 0.5
    plain = _sample(src["head_mask"][0], src["head_mask"][1], np.eye(4), aff, shape) > 0.5
    assert dice(robex) > 0.9
    assert dice(robex) > dice(plain) + 0.05


def test_template_tissues(template24):
    t = template24
    assert t.shape == (24, 24, 24)
    tis = t.tissues()
    np.testing.assert_allclose(tis.sum(0), 1.0, atol=1e-5)
    labels = tis.argmax(0)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    # T1 contrast: WM brighter than GM brighter than CSF
    means = [t.t1[labels == k].mean() for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2]
    assert 0 <= t.head.min() and t.head.max() <= 1
    # the head extends beyond the brain (skull and scalp)
    assert (t.head > 0.1).sum() > 1.3 * (labels > 0).sum()


# ---- population ---------------------------------------------------------------------------------

def test_splits_rule():
    assert splits(3) == ["train", "test", "test"]
    assert splits(8).count("test") == 2 and splits(8).count("val") == 1
    assert splits(20).count("test") == 5
    with pytest.raises(InputError):
        splits(2)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.name != "run.json"}


def test_generate_is_byte_identical_for_a_seed(tmp_path):
    cfg = ToyConfig(n_subjects=3, size=24, ndim=3, seed=7)
    generate(tmp_path / "a", cfg)
    generate(tmp_path / "b", cfg)
    generate(tmp_path / "c", ToyConfig(n_subjects=3, size=24, ndim=3, seed=8))
    da, db, dc = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert da == db
    assert da["sub-001_nbe.nii.gz"] != dc["sub-001_nbe.nii.gz"]
    assert da["template_nbe.nii.gz"] == dc["template_nbe.nii.gz"]  # the template has no randomness


def test_generate_3d_contents(tmp_path):
    df = generate(tmp_path, ToyConfig(n_subjects=4, size=24, ndim=3, seed=0))
    assert list(df.columns) == ["subject", "split", "labels", "image_nbe", "image_be", "image_t2", "prealigned"]
    assert (df["split"] == "test").sum() >= 2
    assert json.loads((tmp_path / "labels.json").read_text()) == {str(k): v for k, v in LABELS.items()}
    sheet = pd.read_csv(tmp_path / "samplesheet.csv")
    assert sheet["image_nbe"].iloc[0] == "sub-001_nbe.nii.gz"  # relative to the samplesheet
    nbe = nib.load(tmp_path / "sub-001_nbe.nii.gz").get_fdata()
    be = nib.load(tmp_path / "sub-001_be.nii.gz").get_fdata()
    t2 = nib.load(tmp_path / "sub-001_t2.nii.gz").get_fdata()
    lab = np.asarray(nib.load(tmp_path / "sub-001_labels.nii.gz").dataobj)
    assert nbe.shape == be.shape == t2.shape == lab.shape == (24, 24, 24)
    for a in (nbe, be, t2):
        assert a.min() >= 0 and a.max() <= 1 and a.max() > 0.9
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    # brain extraction: far from the brain the BE and T2 images are zero, the NBE is not
    from scipy import ndimage
    outside = ~ndimage.binary_dilation(lab > 0, iterations=2)
    assert be[outside].max() < 0.05 and t2[outside].max() < 0.05
    assert nbe[outside].max() > 0.3
    # T2 contrast is inverted: CSF brighter than WM (T1: the opposite)
    assert t2[lab == 1].mean() > t2[lab == 3].mean()
    assert be[lab == 1].mean() < be[lab == 3].mean()
    # subjects differ from the template (deformed) but keep its anatomy
    tl = np.asarray(nib.load(tmp_path / "template_labels.nii.gz").dataobj)
    dice = 2 * ((tl > 0) & (lab > 0)).sum() / ((tl > 0).sum() + (lab > 0).sum())
    assert 0.7 < dice < 0.999


def test_cli_2d(tmp_path):
    rc = main(["toy-data", "--outdir", str(tmp_path), "--n-subjects", "3", "--size", "32", "--ndim", "2",
               "--seed", "1", "--no-affine"])
    assert rc == 0
    img = nib.load(tmp_path / "sub-002_t2.nii.gz")
    assert img.shape == (32, 32)
    lab = np.asarray(nib.load(tmp_path / "sub-002_labels.nii.gz").dataobj)
    assert set(np.unique(lab)) == {0, 1, 2, 3}  # the slice goes through the ventricles
    df = pd.read_csv(tmp_path / "samplesheet.csv")
    assert df["prealigned"].tolist() == [True, True, True]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["seed"] == 1 and run["params"]["ndim"] == 2


def test_cli_rejects_bad_size(tmp_path, capsys):
    assert main(["toy-data", "--outdir", str(tmp_path / "x"), "--size", "8"]) == 2
    assert "--size 8" in capsys.readouterr().err
