"""Preprocessing keeps each subject's anatomy: --spacing with a --reference (the reference only
aligns; the crop follows the subject's own labels) and the QC that fails when a label is lost."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.preprocess.subject import centre_of_mass, check_labels, lost_labels


def _save(path, arr, aff=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.eye(4) if aff is None else aff), str(path))
    return str(path)


def _heart(shape=(24, 24, 6)):
    """Labels 1, 2, 3 filling x 14..21, y 4..11, z 2..3 (voxel indices) of a 1 x 1 x 2 mm grid:
    their centre of mass is voxel (17.5, 7.5, 2.5), world (17.5, 7.5, 5.0) mm."""
    lab = np.zeros(shape, np.uint8)
    lab[14:18, 4:8, 2:4], lab[18:22, 4:8, 2:4], lab[14:22, 8:12, 2:4] = 1, 2, 3
    img = (0.2 + lab * 0.25).astype(np.float32)
    return img, lab, np.diag([1.0, 1.0, 2.0, 1.0])


def _world_com(lab, aff):
    c = np.asarray(ndimage.center_of_mass(lab > 0))
    return aff[:3, :3] @ c + aff[:3, 3]


def test_centre_of_mass_and_lost_labels():
    lab = np.zeros((10, 8), np.uint8)
    lab[6:9, 1:4] = 2  # centre (7, 2)
    assert centre_of_mass(lab, np.zeros((10, 8))) == (7, 2)
    img = np.zeros((10, 8))
    img[2, 5] = 3.0
    assert centre_of_mass(None, img) == (2, 5)
    assert centre_of_mass(np.zeros_like(lab), img) == (2, 5)  # empty map: the image's
    assert centre_of_mass(None, np.ones((10, 8))) == (5, 4)
    before = [np.array([0, 1, 2, 3]), np.array([0, 5])]
    assert lost_labels(before, [np.array([0, 1, 1, 2]), np.array([5, 5])]) == [[3], []]
    with pytest.raises(InputError, match=r"^p7: preprocessing lost label\(s\) \(lab.nii.gz: 3\)"):
        check_labels(before[:1], [np.array([0, 1, 2])], ["/x/lab.nii.gz"], "p7")


def test_spacing_with_reference_keeps_the_subject_fov(tmp_path):
    img, lab, aff = _heart()
    i = _save(tmp_path / "in" / "s1_ed.nii.gz", img, aff)
    g = _save(tmp_path / "in" / "s1_gt.nii.gz", lab, aff)
    # the reference (another subject) covers x, y 0..7 only: its grid would hold none of the heart
    ref = _save(tmp_path / "ref.nii.gz", np.random.default_rng(0).random((8, 8, 6)).astype(np.float32), aff)
    out = tmp_path / "out"
    rc = main(["preprocess", "--subject", "s1", "--images", i, "--labels", g, "--reference", ref,
               "--transform", "none", "--spacing", "2", "2", "2", "--shape", "8", "8", "4", "--outdir", str(out)])
    assert rc == 0
    o = nib.load(out / "s1_gt.nii.gz")
    olab = np.asarray(o.dataobj)
    assert olab.shape == (8, 8, 4) and set(np.unique(olab)) == {0, 1, 2, 3}
    np.testing.assert_allclose(np.sqrt((o.affine[:3, :3] ** 2).sum(0)), [2, 2, 2])
    # resampling and crop move no anatomy in the world: the centre of mass stays at (17.5, 7.5, 5) mm
    np.testing.assert_allclose(_world_com(olab, o.affine), [17.5, 7.5, 5.0], atol=1e-6)
    # ... and sits at the output's centre (4, 4, 2) within half a voxel
    assert np.all(np.abs(np.asarray(ndimage.center_of_mass(olab > 0)) - [4, 4, 2]) <= 0.5)
    run = json.loads((out / "run.json").read_text())
    assert run["spacing"] == [2.0, 2.0, 2.0] and "not used" in run["reference"]
    # the pipeline passes --prealigned (transform none) after --transform Affine: same result
    out2 = tmp_path / "out2"
    assert main(["preprocess", "--subject", "s1", "--images", i, "--labels", g, "--reference", ref,
                 "--transform", "Affine", "--prealigned", "--spacing", "2", "--shape", "8", "8", "4",
                 "--outdir", str(out2)]) == 0
    np.testing.assert_array_equal(np.asarray(nib.load(out2 / "s1_gt.nii.gz").dataobj), olab)


def test_lost_label_is_one_line_naming_subject_and_labels(tmp_path, capsys):
    img, lab, aff = _heart()
    i = _save(tmp_path / "s1_ed.nii.gz", img, aff)
    g = _save(tmp_path / "s1_gt.nii.gz", lab, aff)
    # a reference grid over x 0..17: resampling onto it keeps labels 1 and 3 (x 14..17), loses 2
    ref = _save(tmp_path / "ref.nii.gz", np.zeros((18, 24, 6), np.float32), aff)
    out = tmp_path / "out"
    assert main(["preprocess", "--subject", "patient0007", "--images", i, "--labels", g, "--reference", ref,
                 "--transform", "none", "--outdir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "patient0007: preprocessing lost label(s) (s1_gt.nii.gz: 2)" in err
    assert not out.exists() or not any(out.iterdir())
    # a crop around the heart loses a structure far from it (labels 4 and 5 in a corner)
    lab[0:2, 0:2, 2:4], lab[22:24, 0:2, 2:4] = 4, 5
    g = _save(tmp_path / "s1_gt.nii.gz", lab, aff)
    assert main(["preprocess", "--subject", "p8", "--images", i, "--labels", g, "--spacing", "1", "1", "2",
                 "--shape", "10", "10", "2", "--outdir", str(out)]) == 2
    assert "p8: preprocessing lost label(s) (s1_gt.nii.gz: 4, 5)" in capsys.readouterr().err


def _blob(n, centre):
    yy, xx = np.mgrid[:n, :n].astype(float)
    r = np.hypot(yy - centre[0], (xx - centre[1]) / 0.7)
    img = np.clip(1.2 - r / 8, 0, 1)
    img += 0.5 * ((np.abs(yy - centre[0] - 3) < 2) & (np.abs(xx - centre[1] + 2) < 2))  # breaks symmetry
    img = ndimage.gaussian_filter(img, 1.0).astype(np.float32)
    return img / img.max(), (img > 0.5 * img.max()).astype(np.uint8)


def test_spacing_with_rigid_alignment(tmp_path):
    """Aligned to the reference, on a 2 mm grid holding the whole subject, cropped around its labels."""
    ref, ref_lab = _blob(32, (16, 16))
    mov, mov_lab = _blob(40, (23, 17))  # a larger field of view, the anatomy 7 / 1 voxels further on
    r = _save(tmp_path / "ref.nii.gz", ref)
    m = _save(tmp_path / "m.nii.gz", mov)
    ml = _save(tmp_path / "m_lab.nii.gz", mov_lab)
    out = tmp_path / "out"
    assert main(["preprocess", "--subject", "m", "--images", m, "--labels", ml, "--reference", r,
                 "--transform", "Rigid", "--spacing", "2", "2", "--shape", "12", "12", "--outdir", str(out),
                 "--seed", "0"]) == 0
    o = nib.load(out / "m_lab.nii.gz")
    olab = np.asarray(o.dataobj)
    assert olab.shape == (12, 12) and olab.max() == 1
    np.testing.assert_allclose(np.sqrt((o.affine[:2, :2] ** 2).sum(0)), [2, 2])
    # the alignment moved the anatomy onto the reference's: same world centre within a voxel
    com = o.affine[:2, :2] @ np.asarray(ndimage.center_of_mass(olab > 0)) + o.affine[:2, 3]
    assert np.all(np.abs(com - ndimage.center_of_mass(ref_lab > 0)) < 2.0)
    assert json.loads((out / "run.json").read_text())["transform"]["type"] == "Rigid"


def test_spacing_grid_covers_the_moving_image():
    from diffreg.packages import import_ants
    from diffreg.preprocess.affine import spacing_grid
    ants = import_ants(1)
    ref = ants.from_numpy(np.zeros((4, 4), np.float32))
    mov = ants.from_numpy(np.zeros((10, 12), np.float32), origin=(3.0, -1.0))
    g = spacing_grid(ants, ref, mov, (2.0, 2.0))
    # extent x 2.5..12.5, y -1.5..10.5 -> 5 x 6 voxels of 2 mm, first centre at (3.5, -0.5)
    assert g.shape == (5, 6) and g.spacing == (2.0, 2.0)
    np.testing.assert_allclose(g.origin, (3.5, -0.5))
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=2, translation=(3.0, -1.0))
    g = spacing_grid(ants, ref, mov, (2.0, 2.0), tx)  # fixed -> moving shifts by (3, -1): grid moves back
    np.testing.assert_allclose(g.origin, (0.5, 0.5))


def test_resize_without_alignment_keeps_each_subjects_field_of_view(tmp_path):
    """LDM-Morph's recipe (--transform none --resize 12 12 --shape 16 16) on a subject whose field of
    view is larger than the reference's: its own grid is resized whole, then padded centred."""
    lab = np.zeros((30, 24), np.uint8)
    lab[2:8, 2:6], lab[22:28, 18:22] = 1, 2             # structures near opposite corners
    img = (0.2 + 0.3 * lab).astype(np.float32)
    aff = np.diag([0.5, 0.5, 1.0, 1.0])
    i, g = _save(tmp_path / "s1_img.nii.gz", img, aff), _save(tmp_path / "s1_gt.nii.gz", lab, aff)
    ref = _save(tmp_path / "ref.nii.gz", np.ones((10, 8), np.float32), aff)   # a smaller field of view
    out = tmp_path / "out"
    assert main(["preprocess", "--subject", "s1", "--images", i, "--labels", g, "--reference", ref,
                 "--transform", "none", "--resize", "12", "12", "--shape", "16", "16", "--outdir", str(out)]) == 0
    o = np.asarray(nib.load(out / "s1_gt.nii.gz").dataobj)
    assert o.shape == (16, 16) and set(np.unique(o)) == {0, 1, 2}
    # the 12 x 12 resized image sits centred: two rows/columns of padding on every side
    assert not o[:2].any() and not o[-2:].any() and not o[:, :2].any() and not o[:, -2:].any()
    run = json.loads((out / "run.json").read_text())
    assert "not used" in run["reference"] and run["resize"] == [12, 12]
