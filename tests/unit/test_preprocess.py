"""Preprocessing: crop/pad, intensity, resampling, slices (analytic), ANTs alignment on known
shifts, skull-stripping against a known brain, and the CLI end to end (2D, small)."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.preprocess import crop, intensity, resample, slices


# ---- crop / pad -------------------------------------------------------------------------------

def test_crop_or_pad_exact():
    a = np.arange(5 * 4).reshape(5, 4)
    out = crop.crop_or_pad(a, (-1, 1), (3, 4))
    np.testing.assert_array_equal(out, [[0, 0, 0, 0], [1, 2, 3, 0], [5, 6, 7, 0]])
    np.testing.assert_array_equal(crop.crop_or_pad(a, (0, 0), (5, 4)), a)


def test_foreground_centre_and_window():
    a = np.zeros((20, 10))
    a[4:9, 2:5] = 1
    assert crop.foreground_centre(a) == (6, 3)
    assert crop.crop_window(a.shape, (6, 3), (8, 8)) == (2, -1)


def test_shifted_affine_keeps_world_positions():
    aff = np.diag([2.0, 3.0, 1.5, 1.0])
    aff[:3, 3] = [10, -5, 7]
    start = (3, -2, 4)
    new = crop.shifted_affine(aff, start)
    v = np.array([1, 2, 3])
    np.testing.assert_allclose(new[:3, :3] @ v + new[:3, 3], aff[:3, :3] @ (v + start) + aff[:3, 3])


# ---- intensity --------------------------------------------------------------------------------

def test_minmax_and_percentile():
    a = np.array([2.0, 4.0, 6.0, 10.0])
    np.testing.assert_allclose(intensity.minmax(a), [0, 0.25, 0.5, 1.0])
    x = np.arange(101, dtype=float)  # percentile p of 0..100 is p
    out = intensity.percentile_clip(x, 10, 90)
    assert out[:11].max() == 0 and out[90:].min() == 1
    np.testing.assert_allclose(out[50], 0.5)
    assert intensity.minmax(np.full(4, 3.0)).max() == 0
    with pytest.raises(InputError):
        intensity.percentile_clip(x, 50, 40)


def test_pons_normalisation():
    pet = np.full((6, 6, 9), 4.0)
    labels = np.zeros((6, 6, 9), int)
    labels[2:4, 2:4, :] = 16  # brainstem from z=0 to z=8
    pet[..., 3:6] = 8.0       # its middle third
    m = intensity.pons_mask(labels, [16])
    assert m.sum() == 4 * 3 and m[2:4, 2:4, 3:6].all()
    suvr = intensity.pons_normalise(pet, m, upper=None)
    np.testing.assert_allclose(suvr[0, 0, 0], 0.5)  # 4 / 8
    np.testing.assert_allclose(suvr[2, 2, 4], 1.0)
    out = intensity.pons_normalise(pet, m, upper=100)
    assert out.min() == 0 and out.max() == 1
    with pytest.raises(InputError, match="empty"):
        intensity.pons_normalise(pet, np.zeros_like(m))


# ---- resampling and slices --------------------------------------------------------------------

def test_to_spacing_preserves_a_linear_ramp():
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    aff[:3, 3] = [5.0, 0.0, 0.0]
    x = np.arange(32, dtype=np.float32)[:, None, None] + 5.0  # value = world x
    arr = np.broadcast_to(x, (32, 6, 6)).copy()
    out, new_aff = resample.to_spacing(arr, aff, (2.0, 1.0, 1.0))
    assert out.shape == (16, 6, 6)
    np.testing.assert_allclose(resample.voxel_sizes(new_aff, 3), [2.0, 1.0, 1.0])
    world_x = new_aff[0, 0] * np.arange(16) + new_aff[0, 3]
    np.testing.assert_allclose(out[2:-2, 3, 3], world_x[2:-2], atol=1e-4)  # interior exact
    lab = (arr > 20).astype(np.int16)
    lout, _ = resample.to_spacing(lab, aff, 2.0, order=0)
    assert set(np.unique(lout)) == {0, 1}


def test_to_shape_and_extract_slice():
    arr = np.random.default_rng(0).random((8, 8))
    out, aff = resample.to_shape(arr, np.eye(4), (4, 4))
    np.testing.assert_allclose(resample.voxel_sizes(aff, 2), [2, 2])
    np.testing.assert_allclose(aff[:2, 3], [0.5, 0.5])  # centre of the first 2x2 block
    vol = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    sl, saff = slices.extract(vol, np.eye(4), axis=2, index=3)
    np.testing.assert_array_equal(sl, vol[:, :, 3])
    np.testing.assert_allclose(saff[:3, 3], [0, 0, 3])
    assert slices.parse_slice("2:mid") == (2, "mid") and slices.parse_slice("1:7") == (1, 7)
    lab = np.zeros((4, 5, 6), int)
    lab[:, :, 4] = 1
    assert slices.slice_index(lab.shape, 2, "label", lab) == 4
    with pytest.raises(InputError):
        slices.parse_slice("x")


# ---- ANTs alignment ---------------------------------------------------------------------------

def _blob_2d(n=40, shift=(0, 0)):
    """A smooth asymmetric 2D 'anatomy' with labels, shifted by integer voxels."""
    yy, xx = np.mgrid[:n, :n].astype(float)
    cx, cy = n / 2 + shift[0], n / 2 + shift[1]
    r = np.hypot((yy - cx) / 1.0, (xx - cy) / 0.7)
    img = np.clip(1.2 - r / 12, 0, 1)
    img += 0.5 * ((np.abs(yy - cx - 4) < 3) & (np.abs(xx - cy + 3) < 2))  # an off-centre bar
    img = ndimage.gaussian_filter(img, 1.0)
    lab = (img > 0.5).astype(np.uint8) + (img > 0.9).astype(np.uint8)
    return (img / img.max()).astype(np.float32), lab


def _save(path, arr, aff=None):
    nib.save(nib.Nifti1Image(arr, np.eye(4) if aff is None else aff), str(path))
    return str(path)


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_align_recovers_a_shift(tmp_path):
    from diffreg.preprocess.affine import align
    ref, ref_lab = _blob_2d()
    mov, mov_lab = _blob_2d(shift=(3, -2))
    r = _save(tmp_path / "ref.nii.gz", ref)
    m = _save(tmp_path / "mov.nii.gz", mov)
    m2 = _save(tmp_path / "mov2.nii.gz", 1 - mov)  # a second "modality" of the same subject
    lab = _save(tmp_path / "lab.nii.gz", mov_lab)
    before = _dice(mov_lab > 0, ref_lab > 0)
    out = align([m, m2], r, [lab], transform="Rigid", threads=1, seed=0)
    assert out.images[0].shape == ref.shape and out.labels[0].dtype == np.int16
    assert np.corrcoef(out.images[0].ravel(), ref.ravel())[0, 1] > 0.98
    after = _dice(out.labels[0] > 0, ref_lab > 0)
    assert after > 0.95 and after > before
    assert set(np.unique(out.labels[0])) <= {0, 1, 2}  # genericLabel: no new values
    # the same transform moved the second image: 1 - image stays complementary inside the FOV
    np.testing.assert_allclose(out.images[1][5:-5, 5:-5], 1 - out.images[0][5:-5, 5:-5], atol=0.02)
    # translation found by ANTs is the known shift (ANTs' LPS flips x and y signs)
    assert np.allclose(np.abs(out.transform["parameters"][-2:]), [3, 2], atol=0.3)


def test_align_none_is_identity(tmp_path):
    from diffreg.preprocess.affine import align
    ref, lab = _blob_2d()
    r = _save(tmp_path / "ref.nii.gz", ref)
    out = align([r], r, [_save(tmp_path / "l.nii.gz", lab)], transform="none")
    np.testing.assert_allclose(out.images[0], ref, atol=1e-6)
    np.testing.assert_array_equal(out.labels[0], lab)


def test_align_reorients_to_ras(tmp_path):
    """A reference stored LAS comes back in RAS array order (x flipped)."""
    from diffreg.preprocess.affine import align
    ref, _ = _blob_2d()
    aff = np.diag([-1.0, 1.0, 1.0, 1.0])
    r = _save(tmp_path / "ref.nii.gz", ref, aff)
    out = align([r], r, [], transform="none")
    np.testing.assert_allclose(out.images[0], ref[::-1], atol=1e-6)
    assert out.affine[0, 0] > 0


@pytest.mark.parametrize("ndim", [2, 3])
def test_subject_on_the_reference_grid_is_read_as_is(tmp_path, monkeypatch, ndim):
    """Without a transform, files on the reference's grid skip ANTs and come back equal to what
    ANTs' resampling onto that grid gives (to float32 rounding: its linear interpolation at voxel
    centres); one voxel off that grid, ANTs resamples."""
    from diffreg.preprocess import affine
    img, lab = _blob_2d(24)
    # stored LAS, oblique, anisotropic: canonical reordering and world geometry both matter
    c, s_ = np.cos(0.3), np.sin(0.3)
    aff = np.array([[-c, -s_, 0, 10], [-s_, c, 0, -5], [0, 0, 1, 7], [0, 0, 0, 1]]) @ np.diag([1.5, 2.0, 3.0, 1])
    if ndim == 3:
        img, lab = np.stack([img, img[::-1], img.T]).transpose(1, 2, 0), np.stack([lab, lab[::-1], lab.T]).transpose(1, 2, 0)
    r = _save(tmp_path / "ref.nii.gz", img, aff)
    m = _save(tmp_path / "mov.nii.gz", 1 - img, aff)
    lf = _save(tmp_path / "lab.nii.gz", lab, aff)
    fast = affine.align([m, r], r, [lf], transform="none")
    assert fast.transform["resampled"] is False and fast.transform["moving"] == m
    monkeypatch.setattr(affine, "on_reference_grid", lambda *a, **k: None)
    slow = affine.align([m, r], r, [lf], transform="none")
    assert "resampled" not in slow.transform
    for a, b in zip(fast.images, slow.images):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(fast.labels[0], slow.labels[0])
    np.testing.assert_allclose(fast.affine, slow.affine, atol=1e-6)
    monkeypatch.undo()
    off = aff.copy()
    off[0, 3] += 1.5      # one voxel along x: not the reference's grid
    assert "resampled" not in affine.align([_save(tmp_path / "off.nii.gz", img, off)], r, [], transform="none").transform


def test_skullstrip_ants_atlas_on_toy_head(tmp_path):
    from diffreg.data.toy import template_for
    from diffreg.preprocess.skullstrip import ants_atlas
    tpl = template_for(48, 3)
    mask = ants_atlas(tpl.head, tpl.affine, threads=1, seed=0)
    brain = tpl.tissues().argmax(0) > 0
    # 48^3 voxels of 4.6 mm: a coarse mask, but clearly the brain and not the head. At 32^3 the
    # result moved between 0.84 and 0.93 with ITK's thread count (fixed once per process).
    assert _dice(mask, brain) > 0.85
    assert _dice(mask, brain) > _dice(tpl.head > 0.1, brain) + 0.1


# ---- CLI ----------------------------------------------------------------------------------------

def test_cli_preprocess_2d(tmp_path):
    ref, _ = _blob_2d()
    mov, mov_lab = _blob_2d(shift=(2, 3))
    r = _save(tmp_path / "ref.nii.gz", ref * 3.0)
    m = _save(tmp_path / "in" / "s1_img.nii.gz", mov * 5.0 + 1.0) if (tmp_path / "in").mkdir() is None else None
    lab = _save(tmp_path / "in" / "s1_lab.nii.gz", mov_lab)
    out = tmp_path / "out"
    rc = main(["preprocess", "--subject", "s1", "--images", m, "--labels", lab, "--reference", r,
               "--outdir", str(out), "--transform", "Rigid", "--shape", "32", "32", "--seed", "0"])
    assert rc == 0
    img = nib.load(out / "s1_img.nii.gz")
    arr = img.get_fdata()
    assert arr.shape == (32, 32) and arr.min() == 0 and arr.max() == 1  # kept name, [0, 1]
    lab_out = np.asarray(nib.load(out / "s1_lab.nii.gz").dataobj)
    assert lab_out.dtype == np.uint8
    # the crop window comes from the reference: the reference's centre is the crop's centre
    run = json.loads((out / "run.json").read_text())
    assert run["crop_start"] == [4, 4] and run["transform"]["type"] == "Rigid"
    assert (out / "s1_qc.png").stat().st_size > 1000
    # world coordinates of the output: the reference's voxel (4, 4) is output voxel (0, 0)
    np.testing.assert_allclose(img.affine[:2, 3], [4, 4])


def test_cli_preprocess_failures_leave_nothing(tmp_path, capsys):
    ref, lab = _blob_2d()
    r = _save(tmp_path / "ref.nii.gz", ref)
    out = tmp_path / "out"
    assert main(["preprocess", "--subject", "x", "--images", str(tmp_path / "missing.nii.gz"),
                 "--reference", r, "--outdir", str(out)]) == 2
    assert "missing.nii.gz: file not found" in capsys.readouterr().err
    bad = ref.copy()
    bad[3, 3] = np.nan
    b = _save(tmp_path / "nan.nii.gz", bad)
    assert main(["preprocess", "--subject", "x", "--images", b, "--reference", r, "--outdir", str(out)]) == 2
    assert "NaN" in capsys.readouterr().err
    v = _save(tmp_path / "vol.nii.gz", np.zeros((8, 8, 8), np.float32))
    assert main(["preprocess", "--subject", "x", "--images", v, "--reference", r, "--outdir", str(out)]) == 2
    assert "3D image but the reference is 2D" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_cli_preprocess_spacing_slice_and_pet(tmp_path):
    """No reference: resample to a spacing, crop, take a 2D slice, pons-normalise a PET image."""
    vol = np.full((12, 12, 12), 2.0, np.float32)
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[4:8, 4:8, 0:12] = 16
    vol[4:8, 4:8, 4:8] = 4.0  # pons (middle third of the brainstem) twice the background
    aff = np.diag([0.5, 0.5, 0.5, 1.0])
    p = _save(tmp_path / "pet.nii.gz", vol, aff)
    lab = _save(tmp_path / "aseg.nii.gz", labels, aff)
    out = tmp_path / "o"
    rc = main(["preprocess", "--subject", "p", "--images", p, "--labels", lab, "--transform", "none",
               "--outdir", str(out), "--spacing", "1", "--pet-index", "0", "--percentiles", "0", "100"])
    assert rc == 0
    pet = nib.load(out / "pet.nii.gz").get_fdata()
    assert pet.shape == (6, 6, 6)
    # SUVR background 0.5, pons 1.0 -> min-max over [0.5, 1]: background 0, pons 1
    assert pet[0, 0, 0] == pytest.approx(0.0, abs=1e-6) and pet[2:4, 2:4, 2:4].mean() > 0.5
    out2 = tmp_path / "o2"
    rc = main(["preprocess", "--subject", "p", "--images", p, "--labels", lab, "--transform", "none",
               "--outdir", str(out2), "--extract-slice", "2:mid", "--shape", "10", "10", "10"])
    assert rc == 0
    assert nib.load(out2 / "pet.nii.gz").shape == (10, 10)


def test_cli_pet_modality_finds_the_pet_by_name(tmp_path):
    """--pet-modality pet normalises the image named *_pet.nii.gz, whichever position it has; the
    T1 before it is left as min-max."""
    vol = np.full((12, 12, 12), 2.0, np.float32)
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[4:8, 4:8, 0:12] = 16
    vol[4:8, 4:8, 4:8] = 4.0
    aff = np.diag([0.5, 0.5, 0.5, 1.0])
    t1 = _save(tmp_path / "a.nii.gz", np.arange(12 ** 3, dtype=np.float32).reshape(12, 12, 12), aff)
    pet = _save(tmp_path / "b.nii.gz", vol, aff)
    lab = _save(tmp_path / "aseg.nii.gz", labels, aff)
    base = ["preprocess", "--subject", "s", "--images", t1, pet, "--labels", lab, "--transform", "none",
            "--names", "s_t1.nii.gz", "s_pet.nii.gz", "s_labels.nii.gz", "--percentiles", "0", "100"]
    assert main(base + ["--outdir", str(tmp_path / "o"), "--pet-modality", "pet"]) == 0
    out = nib.load(tmp_path / "o" / "s_pet.nii.gz").get_fdata()
    assert out[0, 0, 0] == pytest.approx(0.0, abs=1e-6) and out[4:8, 4:8, 4:8].min() == pytest.approx(1.0)
    t1_out = nib.load(tmp_path / "o" / "s_t1.nii.gz").get_fdata()
    assert t1_out.min() == 0.0 and t1_out.max() == pytest.approx(1.0)
    with pytest.raises(InputError, match="--pet-modality fa: no image named"):
        from diffreg.commands import preprocess as cmd
        import argparse
        ap = argparse.ArgumentParser()
        cmd.add_arguments(ap)
        cmd.run(ap.parse_args(base[1:] + ["--outdir", str(tmp_path / "x"), "--pet-modality", "fa"]))
    assert not (tmp_path / "x").exists()
    assert main(base + ["--outdir", str(tmp_path / "y"), "--pet-modality", "pet", "--pet-index", "1"]) != 0
