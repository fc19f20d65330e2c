"""The brain-derived stand-ins: ``oasis`` (finer structures) and ``adni`` (T1 / PET-like /
FA-like in their own spaces, M2M-Reg groups), and the QC picture."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from diffreg.data.samplesheet import load_samplesheet
from diffreg.data.standins import adni as A
from diffreg.data.standins.structures import NAMES, to_tissue
from diffreg.io import read_field
from diffreg.spatial import warp_numpy

from .test_standins import _digest, _load, _surface_distance, _toy

SMALL = ["--n-subjects", 3, "--size", 32, "--seed", 3]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("brains")
    for name in ("brain", "oasis", "adni"):
        assert _toy(["--dataset", name, "--outdir", d / name, *SMALL]) == 0
    return d


# ---- oasis ----------------------------------------------------------------------------------------

def test_oasis_merges_back_to_brain_and_keeps_its_images(made):
    a, b = _digest(made / "oasis"), _digest(made / "brain")
    for name in b:
        if "labels" not in name:
            assert a[name] == b[name], name
    for f in ["template_labels.nii.gz"] + [f"sub-00{i}_labels.nii.gz" for i in (1, 2, 3)]:
        fine, tissue = _load(made / "oasis" / f), _load(made / "brain" / f)
        np.testing.assert_array_equal(to_tissue(fine), tissue)
    load_samplesheet(made / "oasis" / "samplesheet.csv")
    assert json.loads((made / "oasis" / "labels.json").read_text()) == {str(k): v for k, v in NAMES.items()}


def test_oasis_structures_where_they_belong(made):
    lab = _load(made / "oasis" / "template_labels.nii.gz")
    img = _load(made / "oasis" / "template_be.nii.gz")
    t2 = _load(made / "oasis" / "template_t2.nii.gz")
    import nibabel as nib
    aff = nib.load(str(made / "oasis" / "template_labels.nii.gz")).affine
    assert set(np.unique(lab)) == set(NAMES)
    x = aff[0, 0] * np.arange(lab.shape[0]) + aff[0, 3]          # MNI x of each column
    for k, left in ((4, True), (5, False), (6, True), (7, False)):
        xs = x[np.nonzero(lab == k)[0]]
        assert (xs < 0).all() if left else (xs > 0).all(), k
    vent, wm, deep = np.isin(lab, (4, 5)), lab == 3, np.isin(lab, (6, 7))
    assert img[vent].mean() < img[deep].mean() < img[wm].mean()   # T1: CSF < GM < WM
    assert t2[vent].mean() > t2[wm].mean() + 0.3                 # T2-like: ventricles bright
    # deep grey matter is deep: every voxel at least 8 mm from the background
    depth = ndimage.distance_transform_edt(lab > 0) * aff[0, 0]
    assert depth[deep].min() >= 8.0


# ---- adni -----------------------------------------------------------------------------------------

def test_adni_layout_validation_and_t1(made):
    from diffreg.data.adapters.adni import LABELS
    d = made / "adni"
    sheet = load_samplesheet(d / "samplesheet.csv")
    load_samplesheet(d / "samplesheet.csv", label_values=set(LABELS))   # the real adapter's label set
    assert json.loads((d / "labels.json").read_text()) == {str(k): v for k, v in LABELS.items()}
    assert list(sheet.columns) == ["subject", "split", "labels", "image_t1", "image_pet", "image_fa",
                                   "image_petnative", "image_fanative", "labels_petnative", "labels_fanative",
                                   "prealigned"]
    assert _digest(d)["sub-002_t1.nii.gz"] == _digest(made / "brain")["sub-002_be.nii.gz"]   # brain's subject
    assert set(np.unique(_load(d / "sub-001_labels.nii.gz"))) == {0, 1, 2, 3, 9}     # 9: the brainstem


def test_adni_contrasts(made):
    d = made / "adni"
    for s in ("sub-001", "sub-003"):
        lab = _load(d / f"{s}_labels.nii.gz")
        pet, fa, t1 = (_load(d / f"{s}_{m}.nii.gz") for m in ("pet", "fa", "t1"))
        wm, cortex, vent = lab == 1, lab == 2, lab == 3
        # FDG: grey matter hot (at 7 mm voxels the PET blur mixes the thin cortex with white matter)
        # and fills the 2-voxel ventricles: they are not tested on PET at this size)
        assert pet[cortex].mean() > 1.1 * pet[wm].mean() and pet[wm].mean() > 3 * pet[lab == 0].mean()
        assert fa[wm].mean() > 2 * fa[cortex].mean() > fa[vent].mean()        # FA: white matter bright
        assert t1[wm].mean() > t1[cortex].mean() > t1[vent].mean()            # T1


def test_adni_native_spaces_and_true_displacement(made):
    d = made / "adni"
    native = pd.read_csv(d / "native.csv")
    assert len(native) == 6
    for _, r in native.iterrows():
        w, _ = read_field(d / r["disp"])
        lab_t1 = _load(d / f"{r['subject']}_labels.nii.gz")
        lab_nat = _load(d / f"{r['subject']}_{r['modality']}_labels.nii.gz")
        back = warp_numpy(lab_nat.astype(np.int16), w, mode="nearest")
        err = np.mean([_surface_distance(back == k, lab_t1 == k) for k in (1, 2, 3)])
        still = np.mean([_surface_distance(lab_nat == k, lab_t1 == k) for k in (1, 2, 3)])
        assert err < 0.5 and still > err + 0.3, (r["modality"], err, still)   # own space, known map
        img_nat = _load(d / r["image"])
        aligned = _load(d / r["aligned"])
        np.testing.assert_allclose(warp_numpy(img_nat, w), aligned, atol=1e-5)


@pytest.mark.parametrize("ndim", [3, 2])
def test_adni_native_maps_invert(ndim):
    cfg = A.AdniConfig(ndim=ndim)
    shape = (32,) * ndim
    d, w = A.native_maps(shape, np.random.default_rng(0), cfg, 5.0, epi=True)
    # w then d is the identity: x + w(x) + d(x + w(x)) = x
    comp = w + np.stack([ndimage.map_coordinates(c, (np.indices(shape) + w).reshape(ndim, -1), order=1,
                                                 mode="nearest").reshape(shape) for c in d])
    inner = tuple(slice(6, -6) for _ in shape)   # away from the border padding
    assert np.abs(comp[(slice(None), *inner)]).mean() < 0.05
    assert np.abs(w).max() > 1.0


def test_adni_2d_and_determinism(tmp_path):
    args = ["--dataset", "adni", "--n-subjects", 3, "--size", 32, "--ndim", 2]
    assert _toy([*args, "--outdir", tmp_path / "a", "--seed", 5]) == 0
    assert _toy([*args, "--outdir", tmp_path / "b", "--seed", 5]) == 0
    assert _toy([*args, "--outdir", tmp_path / "c", "--seed", 6]) == 0
    a, b, c = (_digest(tmp_path / k) for k in "abc")
    assert a == b and a["sub-001_pet.nii.gz"] != c["sub-001_pet.nii.gz"]
    assert _load(tmp_path / "a" / "sub-001_fa.nii.gz").shape == (32, 32)


def test_oasis_determinism(made, tmp_path):
    assert _toy(["--dataset", "oasis", "--outdir", tmp_path, *SMALL]) == 0
    assert _digest(tmp_path) == _digest(made / "oasis")


# ---- QC ------------------------------------------------------------------------------------------

def test_qc_picture(made, tmp_path):
    assert _toy(["--dataset", "adni", "--outdir", tmp_path / "d", "--n-subjects", 3, "--size", 16,
                 "--qc", tmp_path / "qc"]) == 0
    png = tmp_path / "qc" / "adni_standin.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert run["outputs"]["qc"].endswith("adni_standin.png") if "outputs" in run else "adni_standin.png" in json.dumps(run)


def test_report_shows_standin_pictures(tmp_path):
    from diffreg.report.standins import standin_figures
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "faces_standin.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    (tmp_path / "a" / "sub-001_qc.png").write_bytes(b"\x89PNG")          # PREPROCESS's: not ours
    figs = standin_figures([tmp_path])
    assert [f["heading"] for f in figs] == ["Embedded data: faces"] and figs[0]["png_b64"]
