"""Embedded stand-ins (diffreg.data.standins): registry and CLI, ground truth, determinism, layout."""
from __future__ import annotations

import hashlib
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from diffreg.cli import main
from diffreg.data import standins
from diffreg.data.samplesheet import load_samplesheet
from diffreg.errors import InputError
from diffreg.io import read_field
from diffreg.spatial import warp_numpy


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and p.name not in ("run.json", "pair_scheme.txt")}


def _load(path):
    return np.asarray(nib.load(str(path)).dataobj)


def _surface_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean symmetric surface distance (voxels) between two binary masks."""
    ea, eb = a & ~ndimage.binary_erosion(a), b & ~ndimage.binary_erosion(b)
    da, db = ndimage.distance_transform_edt(~eb), ndimage.distance_transform_edt(~ea)
    return float((da[ea].sum() + db[eb].sum()) / (ea.sum() + eb.sum()))


def _jac_min(u: np.ndarray) -> float:
    nd = u.shape[0]
    j = np.empty((nd, nd, *u.shape[1:]))
    for i in range(nd):
        for k in range(nd):
            j[i, k] = np.gradient(u[i], axis=k) + (i == k)
    return float(np.linalg.det(np.moveaxis(j, (0, 1), (-2, -1))).min())


def _toy(args):
    return main(["toy-data", *map(str, args)])


def _check_sheet(folder, adapter_labels, columns):
    """Passes `diffreg validate` (labels.json) and the real adapter's check (its label set), with
    the real adapter's columns."""
    sheet = folder / "samplesheet.csv"
    load_samplesheet(sheet)
    load_samplesheet(sheet, label_values=set(adapter_labels))
    assert json.loads((folder / "labels.json").read_text()) == {str(k): v for k, v in adapter_labels.items()}
    assert list(pd.read_csv(sheet).columns) == columns


# ---- registry and CLI -------------------------------------------------------------------------

def test_registry_lists_the_stand_ins():
    reg = standins.load_all()
    for name in ("brain", "oasis", "acdc", "camus", "echonet"):
        assert name in reg
    assert "knee" not in reg  # no knee image ships in a package: no invented knee (docs/datasets.md)
    with pytest.raises(InputError, match="unknown embedded dataset"):
        standins.get("nope")


def test_default_dataset_is_the_brain_population_unchanged(tmp_path):
    from diffreg.data.toy import ToyConfig, generate
    assert _toy(["--outdir", tmp_path / "cli", "--n-subjects", 3, "--size", 16, "--seed", 4]) == 0
    generate(tmp_path / "direct", ToyConfig(n_subjects=3, size=16, ndim=3, seed=4))
    assert _digest(tmp_path / "cli") == _digest(tmp_path / "direct")
    assert json.loads((tmp_path / "cli" / "run.json").read_text())["params"]["dataset"] == "brain"
    # the command also says how the pipeline pairs the data (between subjects: a brain population)
    assert (tmp_path / "cli" / "pair_scheme.txt").read_text() == "all_ordered\n"


def test_option_of_another_dataset_is_refused(tmp_path, capsys):
    assert _toy(["--dataset", "acdc", "--outdir", tmp_path, "--velocity-std", 0.1]) == 2
    assert "--velocity-std: not an option of --dataset acdc" in capsys.readouterr().err


# ---- acdc ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def acdc3d(tmp_path_factory):
    d = tmp_path_factory.mktemp("acdc3d")
    assert _toy(["--dataset", "acdc", "--outdir", d, "--n-subjects", 3, "--size", 32, "--slices", 8,
                 "--n-frames", 4, "--seed", 2]) == 0
    return d


def test_acdc_layout_and_validation(acdc3d):
    from diffreg.data.adapters.acdc import LABELS
    _check_sheet(acdc3d, LABELS, ["subject", "split", "image_ed", "image_es", "image_mid1", "image_mid2",
                                  "labels_ed", "labels_es", "labels_mid1", "labels_mid2", "prealigned"])
    img = nib.load(str(acdc3d / "patient001_frame01.nii.gz"))
    assert img.shape == (32, 32, 8)
    np.testing.assert_allclose(img.header.get_zooms(), (4.5, 4.5, 10.0))  # anisotropic like ACDC
    frames = pd.read_csv(acdc3d / "frames.csv")
    assert len(frames) == 12 and frames["role"].tolist()[:4] == ["ed", "mid", "mid", "es"]
    sheet = pd.read_csv(acdc3d / "samplesheet.csv")
    assert sheet["image_es"].iloc[0] == "patient001_frame04.nii.gz"
    # the intermediate frames are modalities (DiffuseMorph's trajectory references): mid<k> = frame k + 1
    assert sheet[["image_mid1", "image_mid2"]].iloc[2].tolist() == ["patient003_frame02.nii.gz",
                                                                     "patient003_frame03.nii.gz"]


def test_acdc_labels_match_mr_contrast(acdc3d):
    img, lab = _load(acdc3d / "patient002_frame01.nii.gz"), _load(acdc3d / "patient002_frame01_gt.nii.gz")
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    lv, myo, rv, bg = (img[lab == k].mean() for k in (3, 2, 1, 0))
    assert lv > 0.6 and lv > myo + 0.35 and rv > myo + 0.2 and bg < lv  # bright blood pool, dark muscle
    # contraction: the LV cavity shrinks from ED to ES, the myocardium keeps its volume roughly
    es = _load(acdc3d / "patient002_frame04_gt.nii.gz")
    assert (es == 3).sum() < 0.8 * (lab == 3).sum()
    assert 0.7 < (es == 2).sum() / (lab == 2).sum() < 1.3


def test_acdc_true_displacement_maps_ed_onto_every_frame(acdc3d):
    frames = pd.read_csv(acdc3d / "frames.csv", keep_default_na=False)
    for sid, g in frames.groupby("subject"):
        ed = _load(acdc3d / g["labels"].iloc[0]).astype(np.int16)
        for _, r in g.iloc[1:].iterrows():
            u, _ = read_field(acdc3d / r["disp"])
            assert u.shape == (3, 32, 32, 8)
            assert _jac_min(u) > 0  # a diffeomorphism
            lab = _load(acdc3d / r["labels"])
            warped = warp_numpy(ed, u, mode="nearest")
            err = np.mean([_surface_distance(warped == k, lab == k) for k in (1, 2, 3)])
            assert err < 0.5, (sid, r["frame"], err)
            if r["role"] == "es":  # and the motion is real: without it, the error is larger
                still = np.mean([_surface_distance(ed == k, lab == k) for k in (1, 2, 3)])
                assert still > err + 0.15


def test_acdc_2d_and_determinism(tmp_path):
    args = ["--dataset", "acdc", "--n-subjects", 3, "--size", 24, "--ndim", 2, "--n-frames", 3]
    assert _toy([*args, "--outdir", tmp_path / "a", "--seed", 5]) == 0
    assert _toy([*args, "--outdir", tmp_path / "b", "--seed", 5]) == 0
    assert _toy([*args, "--outdir", tmp_path / "c", "--seed", 6]) == 0
    da, db, dc = (_digest(tmp_path / k) for k in "abc")
    assert da == db
    assert da["patient001_frame01.nii.gz"] != dc["patient001_frame01.nii.gz"]
    u, _ = read_field(tmp_path / "a" / "patient001_frame03_disp.nii.gz")
    assert u.shape == (2, 24, 24)
    ed = _load(tmp_path / "a" / "patient001_frame01_gt.nii.gz").astype(np.int16)
    es = _load(tmp_path / "a" / "patient001_frame03_gt.nii.gz")
    warped = warp_numpy(ed, u, mode="nearest")
    assert np.mean([_surface_distance(warped == k, es == k) for k in (1, 2, 3)]) < 0.5


# ---- camus / echonet ----------------------------------------------------------------------------

def _echo_checks(folder, stem, lv_label):
    ed_img, ed = _load(folder / f"{stem('ed')}.nii.gz"), _load(folder / f"{stem('ed')}_gt.nii.gz")
    es = _load(folder / f"{stem('es')}_gt.nii.gz")
    tissue = ed_img[(ed == 0) & (ed_img > 0)].mean()
    assert ed_img[ed == lv_label].mean() < 0.6 * tissue  # blood pool dark in echo
    assert (es == lv_label).sum() < 0.85 * (ed == lv_label).sum()  # the LV contracts
    assert (ed_img == 0).mean() > 0.2  # outside the sector
    u, _ = read_field(folder / f"{stem('es')}_disp.nii.gz")
    assert _jac_min(u) > 0
    warped = warp_numpy(ed.astype(np.int16), u, mode="nearest")
    labels = sorted(set(np.unique(ed)) - {0})
    err = np.mean([_surface_distance(warped == k, es == k) for k in labels])
    still = np.mean([_surface_distance(ed == k, es == k) for k in labels])
    assert err < 0.5 and still > err + 0.3
    return ed


def test_camus(tmp_path):
    from diffreg.data.adapters.camus import LABELS
    assert _toy(["--dataset", "camus", "--outdir", tmp_path / "a", "--n-subjects", 3, "--size", 64,
                 "--view", "4CH", "--seed", 1]) == 0
    _check_sheet(tmp_path / "a", LABELS, ["subject", "split", "image_ed", "image_es", "labels_ed", "labels_es",
                                          "prealigned"])
    assert pd.read_csv(tmp_path / "a" / "samplesheet.csv")["subject"].iloc[0] == "patient0001_4CH"
    ed = _echo_checks(tmp_path / "a", lambda ph: f"patient0002_4CH_{ph.upper()}", 1)
    assert set(np.unique(ed)) == {0, 1, 2, 3}
    img = _load(tmp_path / "a" / "patient0002_4CH_ED.nii.gz")
    assert img[ed == 2].mean() > img[ed == 1].mean() + 0.3  # bright myocardium
    assert _toy(["--dataset", "camus", "--outdir", tmp_path / "b", "--n-subjects", 3, "--size", 64,
                 "--view", "4CH", "--seed", 1]) == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_echonet_video_and_masks(tmp_path):
    from diffreg.data.adapters.avi import read_avi
    from diffreg.data.adapters.echonet import LABELS
    args = ["--dataset", "echonet", "--n-subjects", 3, "--size", 64, "--n-frames", 8, "--seed", 3]
    assert _toy([*args, "--outdir", tmp_path / "a"]) == 0
    _check_sheet(tmp_path / "a", LABELS, ["subject", "split", "image_ed", "image_es", "labels_ed", "labels_es",
                                          "prealigned"])
    vid = "0X0000000000000001"
    _echo_checks(tmp_path / "a", lambda ph: f"{vid}_{ph}", 1)
    video = read_avi(tmp_path / "a" / "Videos" / f"{vid}.avi")  # the real adapter's reader
    assert video.shape == (8, 64, 64)
    ed = _load(tmp_path / "a" / f"{vid}_ed.nii.gz")
    assert np.abs(np.ascontiguousarray(video[0].T[:, ::-1]) - ed).mean() < 0.03  # the adapter's _to_ras
    listing = pd.read_csv(tmp_path / "a" / "FileList.csv")
    assert listing["Split"].tolist() == ["TRAIN", "TEST", "TEST"] and (listing["EF"] > 20).all()
    assert _toy([*args, "--outdir", tmp_path / "b"]) == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a" / "Videos") == _digest(tmp_path / "b" / "Videos")


def test_frame_and_expression_stand_ins_pair_within_a_subject():
    """TOY_DATA forms each stand-in's pairs with the scheme it declares (pair_scheme.txt)."""
    from diffreg.data import standins
    reg = standins.load_all()
    assert {n: reg.get(n).pairing for n in reg.names()} == {
        "brain": "all_ordered", "oasis": "all_ordered", "adni": "all_ordered",
        "acdc": "intra", "camus": "intra", "echonet": "intra", "faces": "intra"}
