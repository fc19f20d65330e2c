"""Dataset adapters, each on a tiny fixture built here in the dataset's exact on-disk layout."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.data.adapters.adni import merge_freesurfer
from diffreg.data.adapters.avi import read_avi, write_avi_mjpeg
from diffreg.data.adapters.common import assign_splits
from diffreg.errors import InputError

RNG = np.random.default_rng(0)


def nii(path: Path, arr, aff=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4) if aff is None else aff), str(path))
    return path


def labels3d(shape=(8, 8, 6), values=(1, 2, 3)):
    lab = np.zeros(shape, np.uint8)
    for k, v in enumerate(values):
        lab[1 + 2 * k: 3 + 2 * k, 2:6, 1:5] = v
    return lab


def run(args, capsys=None) -> int:
    return main(["dataset", *map(str, args)])


def yaml_file(tmp: Path, text: str) -> Path:
    p = tmp / "conf.yaml"
    p.write_text(text)
    return p


# ---- split rules ------------------------------------------------------------------------------

def test_assign_splits_rules():
    ids = [f"s{i}" for i in range(6)]
    assert assign_splits(ids[::-1], {"train": 3, "val": 1, "test": "rest"}) == {
        "s0": "train", "s1": "train", "s2": "train", "s3": "val", "s4": "test", "s5": "test"}
    given = {i: ("test" if i in ("s4", "s5") else "train") for i in ids}
    out = assign_splits(ids, {"from": "given", "val_from_train": 1}, given)
    assert out["s3"] == "val" and out["s2"] == "train" and out["s5"] == "test"
    out = assign_splits(ids, {"groups": ["train"], "train": 3, "test": "rest"}, given)
    assert sorted(out) == ids[:4] and out["s3"] == "test"
    with pytest.raises(InputError, match="exceed"):
        assign_splits(ids, {"train": 300, "test": "rest"})


# ---- Neurite-OASIS ------------------------------------------------------------------------------

def test_neurite_oasis(tmp_path, capsys):
    root = tmp_path / "neurite-oasis"
    for i in range(1, 6):
        d = root / f"OASIS_OAS1_{i:04d}_MR1"
        nii(d / "aligned_norm.nii.gz", RNG.random((8, 8, 6)).astype(np.float32))
        nii(d / "aligned_orig.nii.gz", RNG.random((8, 8, 6)).astype(np.float32))
        nii(d / "aligned_seg4.nii.gz", labels3d(values=(1, 2, 4)))
        nii(d / "aligned_seg35.nii.gz", labels3d(values=(5, 17, 35)))
    (root / "subjects.txt").write_text("\n".join(p.name for p in root.iterdir()) + "\n")
    out = tmp_path / "o" / "samplesheet.csv"
    # the paper's split (300 train) does not fit 5 subjects: one clear line naming the scheme that does
    assert run(["neurite-oasis", "--root", root, "--out", out]) == 2
    assert ("split counts (300) of split scheme dgir exceed the 5 subjects found; give --split-scheme small"
            in capsys.readouterr().err)
    assert run(["neurite-oasis", "--root", root, "--split-scheme", "small", "--out", out]) == 0
    assert pd.read_csv(out)["split"].value_counts().to_dict() == {"train": 3, "test": 2}
    conf = yaml_file(tmp_path, "splits: {default: s, schemes: {s: {train: 3, test: rest}}}\n"
                               "pairings:\n  be_nbe: {split: test, scheme: all_ordered, moving_modality: be,"
                               " fixed_modality: nbe}\n")
    assert run(["neurite-oasis", "--root", root, "--out", out, "--config", conf]) == 0
    df = pd.read_csv(out)
    assert df["split"].tolist() == ["train"] * 3 + ["test"] * 2
    assert df["image_be"].iloc[0].endswith("OASIS_OAS1_0001_MR1/aligned_norm.nii.gz")
    assert df["image_nbe"].iloc[0].endswith("aligned_orig.nii.gz")
    assert df["labels"].iloc[0].endswith("aligned_seg4.nii.gz")
    pairs = pd.read_csv(out.parent / "pairs_be_nbe.csv")
    assert len(pairs) == 2 * 1 and set(pairs["moving_subject"]) == {"OASIS_OAS1_0004_MR1", "OASIS_OAS1_0005_MR1"}
    assert json.loads((out.parent / "labels.json").read_text())["4"] == "CSF"
    assert run(["neurite-oasis", "--root", root, "--out", out, "--config", conf, "--seg", "seg35"]) == 0
    assert pd.read_csv(out)["labels"].iloc[0].endswith("aligned_seg35.nii.gz")
    # the project's own declaration gives 300 / 114 on the real data: counts are read from YAML
    (root / "OASIS_OAS1_0003_MR1" / "aligned_orig.nii.gz").unlink()
    assert run(["neurite-oasis", "--root", root, "--out", out, "--config", conf]) == 2
    assert "aligned_orig.nii.gz: missing" in capsys.readouterr().err


# ---- OASIS-3 ------------------------------------------------------------------------------------

def test_oasis3_freesurfer_layout(tmp_path):
    root = tmp_path / "oasis3"
    for i in range(4):
        d = root / f"OAS3000{i}_MR_d01{i}0" / "mri"
        d.mkdir(parents=True)
        aff = np.diag([1.0, 1.0, 1.0, 1.0])
        nib.save(nib.MGHImage(RNG.random((8, 8, 6)).astype(np.float32), aff), str(d / "brain.mgz"))
        nib.save(nib.MGHImage(labels3d(values=(2, 17, 41)).astype(np.int32), aff), str(d / "aseg.mgz"))
    atlas = nii(tmp_path / "atlas.nii.gz", RNG.random((8, 8, 6)).astype(np.float32))
    atlas_lab = nii(tmp_path / "atlas_seg.nii.gz", labels3d())
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["oasis3", "--root", root, "--out", out, "--split-scheme", "proportional_small",
                "--atlas-image", atlas, "--atlas-labels", atlas_lab]) == 0
    df = pd.read_csv(out)
    assert df["split"].tolist() == ["train", "train", "test", "test"]
    conv = nib.load(df["image_t1"].iloc[0])  # MGZ converted to NIfTI beside the samplesheet
    assert df["image_t1"].iloc[0].endswith(".nii.gz") and conv.shape == (8, 8, 6)
    assert set(np.unique(np.asarray(nib.load(df["labels"].iloc[0]).dataobj))) == {0, 2, 17, 41}
    pairs = pd.read_csv(out.parent / "pairs_diffusemorph_atlas.csv")
    assert len(pairs) == 2 and set(pairs["fixed_image"]) == {str(atlas.resolve())}


# ---- ACDC ---------------------------------------------------------------------------------------

def cine(shape=(8, 8, 4), n=12):
    """A 4D cine whose frame f (1-based) is 100 f plus a small ramp: min = 100 f names the frame."""
    ramp = (np.arange(np.prod(shape)).reshape(shape) % 7).astype(np.float32)
    return np.stack([100.0 * f + ramp for f in range(1, n + 1)], axis=-1)


def _acdc(root: Path):
    for folder, ids in (("training", (1, 2, 3)), ("testing", (101, 102))):
        for i in ids:
            d = root / folder / f"patient{i:03d}"
            ed, es = 1, 8 + i % 3
            d.mkdir(parents=True)
            (d / "Info.cfg").write_text(f"ED: {ed}\nES: {es}\nGroup: NOR\nHeight: 170.0\nNbFrame: 12\nWeight: 70.0\n")
            frames = nii(d / f"patient{i:03d}_4d.nii.gz", cine())
            for f in (ed, es):  # the release's ED / ES files are frames of its cine
                nii(d / f"patient{i:03d}_frame{f:02d}.nii.gz", nib.load(frames).get_fdata()[..., f - 1])
                nii(d / f"patient{i:03d}_frame{f:02d}_gt.nii.gz", labels3d((8, 8, 4), (1, 2, 3)))


def test_acdc(tmp_path, capsys):
    root = tmp_path / "database"
    _acdc(root)
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["acdc", "--root", root, "--out", out]) == 0  # DiffuseReg: training / testing folders
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert df["split"].tolist() == ["train"] * 3 + ["test"] * 2
    row = df[df["subject"] == "patient101"].iloc[0]
    assert row["image_ed"].endswith("patient101_frame01.nii.gz")
    assert row["image_es"].endswith("patient101_frame10.nii.gz")  # ES from Info.cfg
    assert row["labels_es"].endswith("patient101_frame10_gt.nii.gz")
    # the intermediate frames: ED 1 -> ES 10 is 9 frames, so 0.25 / 0.5 / 0.75 of the way are
    # 2.25 / 4.5 / 6.75 frames on: frames 3, 6 (a half rounds up) and 8, at 2/9, 5/9 and 7/9
    for k, frame, time in ((1, 3, 0.2222), (2, 6, 0.5556), (3, 8, 0.7778)):
        assert row[f"image_mid{k}"].endswith(f"data/patient101/patient101_frame{frame:02d}.nii.gz")
        assert nib.load(row[f"image_mid{k}"]).get_fdata().min() == 100 * frame  # that frame's values
        assert row[f"labels_mid{k}"] == ""  # a cine has no labels between ED and ES
        assert int(row[f"frame_mid{k}"]) == frame and float(row[f"time_mid{k}"]) == time
    assert "nominal times 0.25, 0.5, 0.75" in capsys.readouterr().err
    assert main(["validate", "--input", str(out)]) == 0  # test rows need no labels for mid1..mid3
    dm = pd.read_csv(out.parent / "pairs_diffusemorph_ed_to_es.csv")
    dr = pd.read_csv(out.parent / "pairs_diffusereg_es_to_ed.csv")
    assert len(dm) == len(dr) == 2
    assert dm["moving_image"].iloc[0].endswith("frame01.nii.gz") and dm["moving_labels"].iloc[0].endswith("frame01_gt.nii.gz")
    assert dr["moving_image"].iloc[0].endswith("frame10.nii.gz") and dr["fixed_labels"].iloc[0].endswith("frame01_gt.nii.gz")
    assert json.loads((out.parent / "labels.json").read_text())["3"] == "left ventricle"
    conf = yaml_file(tmp_path, "splits: {default: a, schemes: {a: {from: given, val_from_train: 1},"
                               " b: {groups: [train], train: 2, test: rest}}}\n"
                               "pairings: {p: {split: test, scheme: intra, moving_modality: ed, fixed_modality: es}}\n")
    assert run(["acdc", "--root", root, "--out", out, "--config", conf]) == 0
    # which training patient becomes val is a seeded, pathology-stratified draw (test_adapter_layouts)
    split = pd.read_csv(out)["split"].tolist()
    assert sorted(split[:3]) == ["train", "train", "val"] and split[3:] == ["test", "test"]
    assert run(["acdc", "--root", root, "--out", out, "--config", conf, "--split-scheme", "b"]) == 0
    df = pd.read_csv(out)
    assert df["subject"].tolist() == ["patient001", "patient002", "patient003"]  # testing/ left out
    assert sorted(df["split"]) == ["test", "train", "train"]
    (root / "training" / "patient002" / "Info.cfg").write_text("Group: NOR\n")
    assert run(["acdc", "--root", root, "--out", out]) == 2
    assert "Info.cfg: no integer 'ED:' line" in capsys.readouterr().err


# ---- CAMUS --------------------------------------------------------------------------------------

def test_camus_nifti_and_mhd(tmp_path):
    from diffreg.packages import import_ants
    ants = import_ants(1)
    root = tmp_path / "CAMUS"
    for i in range(1, 5):
        d = root / f"patient{i:04d}"
        d.mkdir(parents=True)
        for view in ("2CH", "4CH"):
            for ph in ("ED", "ES"):
                img = RNG.random((12, 10)).astype(np.float32)
                lab = np.zeros((12, 10), np.uint8)
                lab[3:8, 3:7], lab[2:3, 3:7], lab[8:10, 4:6] = 1, 2, 3
                stem = d / f"patient{i:04d}_{view}_{ph}"
                if i == 4:  # the original release: MetaImage
                    ants.image_write(ants.from_numpy(img), str(stem) + ".mhd")
                    ants.image_write(ants.from_numpy(lab.astype(np.float32)), str(stem) + "_gt.mhd")
                else:
                    nii(Path(str(stem) + ".nii.gz"), img)
                    nii(Path(str(stem) + "_gt.nii.gz"), lab)
        (d / "Info_2CH.cfg").write_text("ED: 1\nES: 14\nNbFrame: 20\n")
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["camus", "--root", root, "--out", out, "--view", "4CH", "--split-scheme", "small"]) == 0
    df = pd.read_csv(out)
    assert df["subject"].tolist() == [f"patient{i:04d}_4CH" for i in range(1, 5)]
    assert df["split"].tolist() == ["train", "train", "test", "test"]
    mhd = df[df["subject"] == "patient0004_4CH"].iloc[0]
    lab = np.asarray(nib.load(mhd["labels_es"]).dataobj)
    assert mhd["labels_es"].endswith(".nii.gz") and set(np.unique(lab)) == {0, 1, 2, 3}
    pairs = pd.read_csv(out.parent / "pairs_ldm_morph_ed_to_es.csv")
    assert len(pairs) == 2 and (pairs["moving_subject"] == pairs["fixed_subject"]).all()
    assert pairs["moving_image"].str.contains("_4CH_ED").all() and pairs["fixed_image"].str.contains("_4CH_ES").all()


# ---- EchoNet-Dynamic ----------------------------------------------------------------------------

def _disc_tracing(fname, frame, cy, cx, r, n=11):
    """VolumeTracings rows of a disc: the long axis, then n horizontal chords."""
    rows = [(fname, cx, cy - r, cx, cy + r, frame)]
    for y in np.linspace(cy - r * 0.9, cy + r * 0.9, n):
        half = np.sqrt(max(r * r - (y - cy) ** 2, 0))
        rows.append((fname, cx - half, y, cx + half, y, frame))
    return rows


def test_avi_roundtrip(tmp_path):
    frames = np.zeros((3, 16, 24), np.uint8)
    frames[1, 4:12, 6:18] = 200
    write_avi_mjpeg(tmp_path / "v.avi", frames)
    back = read_avi(tmp_path / "v.avi")
    assert back.shape == (3, 16, 24)
    np.testing.assert_allclose(back * 255, frames, atol=12)  # JPEG is lossy
    (tmp_path / "x.avi").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not an AVI"):
        read_avi(tmp_path / "x.avi")


def test_echonet(tmp_path):
    root = tmp_path / "EchoNet-Dynamic"
    (root / "Videos").mkdir(parents=True)
    names = [f"0X{i:04X}ABCD" for i in range(4)]
    traces, lists = [], []
    yy, xx = np.mgrid[:112, :112]
    for k, name in enumerate(names):
        frames = np.full((12, 112, 112), 20, np.uint8)
        radius = {3: 30, 9: 18}  # ED (large) at frame 3, ES (small) at frame 9
        for f, r in radius.items():
            frames[f][(yy - 56) ** 2 + (xx - 50) ** 2 <= r * r] = 220
        write_avi_mjpeg(root / "Videos" / f"{name}.avi", frames)
        # ES listed first, as in the release; ED is found by area, not by order
        traces += _disc_tracing(f"{name}.avi", 9, 56, 50, 18) + _disc_tracing(f"{name}.avi", 3, 56, 50, 30)
        lists.append({"FileName": name, "EF": 60.0, "ESV": 30.0, "EDV": 80.0, "FrameHeight": 112,
                      "FrameWidth": 112, "FPS": 50, "NumberOfFrames": 12,
                      "Split": ["TRAIN", "TRAIN", "VAL", "TEST"][k]})
    pd.DataFrame(lists).to_csv(root / "FileList.csv", index=False)
    pd.DataFrame(traces, columns=["FileName", "X1", "Y1", "X2", "Y2", "Frame"]).to_csv(
        root / "VolumeTracings.csv", index=False)
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["echonet", "--root", root, "--out", out]) == 0
    df = pd.read_csv(out)
    assert df["split"].tolist() == ["train", "train", "val", "test"]
    row = df.iloc[3]
    ed = nib.load(row["image_ed"]).get_fdata()
    ed_mask = np.asarray(nib.load(row["labels_ed"]).dataobj) > 0
    es_mask = np.asarray(nib.load(row["labels_es"]).dataobj) > 0
    assert ed.shape == (112, 112) and ed_mask.sum() > 2 * es_mask.sum()
    # the traced polygon matches the disc in the frame: bright inside, dark outside
    assert ed[ed_mask].mean() > 0.75 and ed[~ed_mask].mean() < 0.2
    disc = np.pi * 30 * 30 * 0.9  # chords span 90% of the height
    assert abs(ed_mask.sum() - disc) / disc < 0.1
    pairs = pd.read_csv(out.parent / "pairs_ldm_morph_ed_to_es.csv")
    assert len(pairs) == 1 and pairs["moving_image"].iloc[0].endswith("_ed.nii.gz")


# ---- ADNI ---------------------------------------------------------------------------------------

def test_merge_freesurfer_groups():
    aseg = np.array([0, 2, 41, 3, 1024, 2035, 4, 15, 7, 8, 47, 10, 49, 11, 26, 58, 12, 16, 17, 53, 18, 54, 13, 24])
    expected = [0, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 7, 7, 8, 9, 10, 10, 11, 11, 0, 0]
    np.testing.assert_array_equal(merge_freesurfer(aseg), expected)


def test_adni_csv(tmp_path):
    rows = []
    for i in range(4):
        d = tmp_path / "adni" / f"sub{i}"
        aseg = labels3d(values=(2, 16, 17))
        nii(d / "t1.nii.gz", RNG.random((8, 8, 6)).astype(np.float32))
        nii(d / "pet.nii.gz", RNG.random((8, 8, 6)).astype(np.float32))
        nii(d / "aparc+aseg.nii.gz", aseg.astype(np.int16))
        rows.append({"subject": f"sub{i}", "t1": f"adni/sub{i}/t1.nii.gz", "pet": f"adni/sub{i}/pet.nii.gz",
                     "aseg": f"adni/sub{i}/aparc+aseg.nii.gz", "split": ["train", "train", "test", "test"][i]})
    pd.DataFrame(rows).to_csv(tmp_path / "adni.csv", index=False)
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["adni", "--csv", tmp_path / "adni.csv", "--out", out]) == 0
    df = pd.read_csv(out)
    assert df["split"].tolist() == ["train", "train", "test", "test"]
    lab = np.asarray(nib.load(df["labels"].iloc[0]).dataobj)
    assert set(np.unique(lab)) == {0, 1, 9, 10}  # WM, brainstem, hippocampus groups
    assert df["prealigned"].tolist() == [True] * 4
    pairs = pd.read_csv(out.parent / "pairs_m2m_pet_to_t1.csv")
    assert len(pairs) == 2 and (pairs["moving_subject"] != pairs["fixed_subject"]).all()
    assert not (out.parent / "pairs_m2m_fa_to_t1.csv").exists()  # no FA in this CSV
    pd.DataFrame(rows).drop(columns=["pet"]).to_csv(tmp_path / "bad.csv", index=False)
    assert run(["adni", "--csv", tmp_path / "bad.csv", "--out", out]) == 2


# ---- knee DXA / X-ray -----------------------------------------------------------------------------

def test_knee_csv_with_png(tmp_path):
    from PIL import Image
    rows = []
    for i, (mod, sp) in enumerate([("dxa", "train"), ("dxa", "test"), ("dxa", "test"),
                                   ("xray", "train"), ("xray", "test"), ("xray", "test"), ("xray", "test")]):
        img = (RNG.random((20, 16)) * 255).astype(np.uint8)
        lab = np.zeros((20, 16), np.uint8)
        lab[0:8, 5:11], lab[11:20, 5:11], lab[12:20, 12:14] = 1, 2, 3  # femur above tibia, fibula
        Image.fromarray(img).save(tmp_path / f"k{i}.png")
        Image.fromarray(lab).save(tmp_path / f"k{i}_bones.png")
        rows.append({"subject": f"k{i}", "modality": mod.upper() if i == 0 else mod, "image": f"k{i}.png",
                     "labels": f"k{i}_bones.png", "split": sp})
    pd.DataFrame(rows).to_csv(tmp_path / "knee.csv", index=False)
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["knee", "--csv", tmp_path / "knee.csv", "--out", out]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert (df["image_dxa"] != "").sum() == 3 and (df["image_xray"] != "").sum() == 4
    lab = np.asarray(nib.load(df["labels"].iloc[0]).dataobj)
    assert lab.shape == (16, 20)  # (x, y): PNG columns become x
    # image rows run downwards, y runs upwards: the femur (top rows) sits at high y
    assert lab[7, 19] == 1 and lab[7, 0] == 2
    pairs = pd.read_csv(out.parent / "pairs_dgir_dxa_to_xray.csv")
    assert len(pairs) == 2 * 3  # every test DXA -> every test X-ray
    bad = pd.DataFrame(rows)
    bad.loc[0, "modality"] = "mri"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert run(["knee", "--csv", tmp_path / "bad.csv", "--out", out]) == 2
