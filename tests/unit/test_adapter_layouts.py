"""Adapters on the layouts users really have: CAMUS's 2023 NIfTI release with its split lists,
stray folders, EchoNet videos without tracings (skipped.csv), and ACDC's pathology-stratified
splits (its training patients come in blocks of 20 per pathology) with the cine's intermediate
frames (4D cine missing, ES before ED)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.data.adapters.avi import write_avi_mjpeg
from diffreg.data.adapters.common import assign_splits, stratified_order
from diffreg.errors import InputError

RNG = np.random.default_rng(1)
GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")


def nii(path: Path, arr) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4)), str(path))
    return path


def run(args) -> int:
    return main(["dataset", *map(str, args)])


def skipped_csv(out: Path) -> pd.DataFrame:
    return pd.read_csv(out.parent / "skipped.csv", keep_default_na=False)


# ---- stratified splits --------------------------------------------------------------------------

def test_stratified_split_counts_per_pathology():
    ids = [f"patient{i:03d}" for i in range(1, 101)]
    strata = {i: GROUPS[(int(i[-3:]) - 1) // 20] for i in ids}  # ACDC's blocks of 20
    rule = {"train": 90, "val": 0, "test": "rest"}
    plain = assign_splits(ids, rule)
    assert {strata[i] for i, s in plain.items() if s == "test"} == {"RV"}  # the problem: one pathology
    out = assign_splits(ids, rule, strata=strata, seed=0)
    assert Counter(strata[i] for i, s in out.items() if s == "test") == {g: 2 for g in GROUPS}
    assert assign_splits(ids, rule, strata=strata, seed=0) == out  # deterministic for a seed
    assert assign_splits(ids, rule, strata=strata, seed=1) != out
    given = {i: "train" for i in ids}
    val = assign_splits(ids, {"from": "given", "val_from_train": 5}, given, strata=strata, seed=3)
    assert Counter(strata[i] for i, s in val.items() if s == "val") == {g: 1 for g in GROUPS}
    # unequal strata: every prefix holds each stratum in proportion (to within one subject)
    strata2 = {f"s{k:02d}": ("a" if k < 30 else "b") for k in range(40)}
    order = stratified_order(list(strata2), strata2, seed=0)
    first = Counter(strata2[i] for i in order[:8])
    assert abs(first["a"] - 6) <= 1 and abs(first["b"] - 2) <= 1
    assert sorted(order) == sorted(strata2)


def test_val_from_train_larger_than_train_is_one_line():
    ids = [f"s{i}" for i in range(4)]
    given = {"s0": "train", "s1": "train", "s2": "test", "s3": "test"}
    with pytest.raises(InputError, match=r"^split scheme: val_from_train 3 must be smaller than the 2 training"):
        assign_splits(ids, {"from": "given", "val_from_train": 3}, given)


# ---- ACDC -----------------------------------------------------------------------------------------

def _acdc(root: Path, n_train=10):
    lab = np.zeros((6, 6, 3), np.uint8)
    lab[1:3, 1:4, 1], lab[3:5, 1:4, 1], lab[1:5, 4:5, 1] = 1, 2, 3
    ids = [("training", i, GROUPS[(i - 1) * len(GROUPS) // n_train]) for i in range(1, n_train + 1)]
    ids += [("testing", 101, "NOR"), ("testing", 102, "DCM")]
    for folder, i, group in ids:
        d = root / folder / f"patient{i:03d}"
        d.mkdir(parents=True)
        (d / "Info.cfg").write_text(f"ED: 1\nES: 5\nGroup: {group}\nNbFrame: 10\n")
        frames = RNG.random((6, 6, 3, 10)).astype(np.float32)
        nii(d / f"patient{i:03d}_4d.nii.gz", frames)
        for f in (1, 5):
            nii(d / f"patient{i:03d}_frame{f:02d}.nii.gz", frames[..., f - 1])
            nii(d / f"patient{i:03d}_frame{f:02d}_gt.nii.gz", lab)
    return {f"patient{i:03d}": g for _, i, g in ids}


def _cine_patient(root: Path, pid: str, ed: int, es: int, n: int = 12, shape=(6, 6, 3)) -> Path:
    """A testing/ patient whose cine frame f (1-based) has minimum 100 f (the frame is checkable)."""
    d = root / "testing" / pid
    d.mkdir(parents=True)
    (d / "Info.cfg").write_text(f"ED: {ed}\nES: {es}\nGroup: NOR\nNbFrame: {n}\n")
    ramp = (np.arange(np.prod(shape)).reshape(shape) % 5).astype(np.float32)
    cine = np.stack([100.0 * f + ramp for f in range(1, n + 1)], axis=-1)
    nii(d / f"{pid}_4d.nii.gz", cine)
    lab = np.zeros(shape, np.uint8)
    lab[1:3, 1:4, 1], lab[3:5, 1:4, 1] = 1, 3
    for f in (ed, es):
        nii(d / f"{pid}_frame{f:02d}.nii.gz", cine[..., f - 1])
        nii(d / f"{pid}_frame{f:02d}_gt.nii.gz", lab)
    return d


def test_acdc_mid_frames_wrap_missing_cine_and_off(tmp_path, capsys):
    root = tmp_path / "database"
    _cine_patient(root, "patient101", ed=1, es=9)
    # ES before ED: the cine is one cycle, so ED 10 -> ES 4 runs 10, 11, 12, 1, .. 4 (6 frames on)
    _cine_patient(root, "patient102", ed=10, es=4)
    (_cine_patient(root, "patient103", ed=1, es=9) / "patient103_4d.nii.gz").unlink()
    (_cine_patient(root, "patient104", ed=1, es=9) / "Info.cfg").write_text("ED: 1\nES: 9\nNbFrame: 30\n")
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["acdc", "--root", root, "--out", out]) == 0
    err = capsys.readouterr().err
    df = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("subject")
    assert list(df.index) == ["patient101", "patient102", "patient103", "patient104"]  # nobody dropped

    def frame(sid, k):
        return int(nib.load(df.at[sid, f"image_mid{k}"]).get_fdata().min()) // 100

    # ED 1 -> ES 9: 8 frames, so exactly 2, 4, 6 frames on: the nominal times themselves
    assert [frame("patient101", k) for k in (1, 2, 3)] == [3, 5, 7]
    assert [float(df.at["patient101", f"time_mid{k}"]) for k in (1, 2, 3)] == [0.25, 0.5, 0.75]
    # 6 frames on: 1.5 -> 2 (halves round up), 3, 4.5 -> 5: frames 12, 1, 3 at 2/6, 3/6, 5/6
    assert [frame("patient102", k) for k in (1, 2, 3)] == [12, 1, 3]
    assert [df.at["patient102", f"frame_mid{k}"] for k in (1, 2, 3)] == ["12", "1", "3"]
    assert [float(df.at["patient102", f"time_mid{k}"]) for k in (1, 2, 3)] == [0.3333, 0.5, 0.8333]
    # no cine, or one that disagrees with Info.cfg: ED and ES kept, no mid frames, noted and listed
    for sid in ("patient103", "patient104"):
        assert df.at[sid, "image_ed"] and df.at[sid, "image_mid1"] == df.at[sid, "time_mid1"] == ""
    sk = skipped_csv(out).set_index("item")["reason"]
    assert sk[str(root / "testing/patient103/patient103_4d.nii.gz")] == \
        "missing; no intermediate frames (mid1..mid3) for patient103"
    assert sk[str(root / "testing/patient104/patient104_4d.nii.gz")].startswith("12 frames, Info.cfg says NbFrame: 30")
    assert len(sk) == 2 and "patient103_4d.nii.gz: missing; no intermediate frames" in err
    assert "at most 0.083 off" in err  # patient102's 2/6 against 0.25
    assert main(["validate", "--input", str(out)]) == 0
    # --no-mid-frames: ED and ES only, nothing read from the cines
    assert run(["acdc", "--root", root, "--out", out, "--no-mid-frames"]) == 0
    assert not [c for c in pd.read_csv(out).columns if "mid" in c] and skipped_csv(out).empty


def test_acdc_stray_folder_and_stratified_split(tmp_path, capsys):
    root = tmp_path / "database"
    group = _acdc(root)
    (root / "training" / "patient001_backup").mkdir()  # a user's copy: no Info.cfg
    out = tmp_path / "o" / "samplesheet.csv"
    conf = tmp_path / "c.yaml"
    conf.write_text("splits: {default: dm, schemes: {dm: {groups: [train], train: 5, val: 0, test: rest},"
                    " big: {from: given, val_from_train: 10}}}\n"
                    "pairings: {p: {split: test, scheme: intra, moving_modality: ed, fixed_modality: es}}\n")
    assert run(["acdc", "--root", root, "--out", out, "--config", conf]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "patient001_backup: folder name is not patientNNN" in err
    sk = skipped_csv(out)
    assert list(sk.columns) == ["item", "reason"] and len(sk) == 1 and sk["item"][0].endswith("patient001_backup")
    df = pd.read_csv(out)
    assert len(df) == 10  # the training set only (groups: [train])
    # two patients per pathology, one of each in test
    assert Counter(group[s] for s in df.loc[df["split"] == "test", "subject"]) == {g: 1 for g in GROUPS}
    # --seed draws another stratified split (still one per pathology), the same seed the same one
    picks = []
    for seed in (0, 1, 1):
        assert run(["acdc", "--root", root, "--out", out, "--config", conf, "--seed", seed]) == 0
        test = sorted(pd.read_csv(out).query("split == 'test'")["subject"])
        assert Counter(group[s] for s in test) == {g: 1 for g in GROUPS}
        picks.append(test)
    assert picks[1] == picks[2] and picks[0] != picks[1]
    assert run(["acdc", "--root", root, "--out", out, "--config", conf, "--split-scheme", "big"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("diffreg: error: split scheme: val_from_train 10 must be smaller than the 10 training "
                       "subjects found")


# ---- CAMUS: the 2023 NIfTI release ----------------------------------------------------------------

def _camus_patient(folder: Path, pid: str, views=("2CH", "4CH")):
    lab = np.zeros((10, 8), np.uint8)
    lab[3:7, 2:5], lab[2:3, 2:5], lab[7:9, 3:5] = 1, 2, 3
    for view in views:
        for ph in ("ED", "ES"):
            nii(folder / pid / f"{pid}_{view}_{ph}.nii.gz", RNG.random((10, 8)).astype(np.float32))
            nii(folder / pid / f"{pid}_{view}_{ph}_gt.nii.gz", lab)


def test_camus_2023_release_with_split_lists(tmp_path, capsys):
    root = tmp_path / "CAMUS"
    for i in range(1, 7):
        _camus_patient(root / "database_nifti", f"patient{i:04d}")
    _camus_patient(root, "patient0007")                                  # directly under root too
    _camus_patient(root / "database_nifti", "patient0008", views=("4CH",))  # no 2CH files
    (root / "database_nifti" / "patient0003_old").mkdir()                 # a stray copy
    lists = root / "database_split"
    lists.mkdir()
    (lists / "subgroup_training.txt").write_text("patient0001\npatient0002\npatient0003\npatient0007\n")
    (lists / "subgroup_validation.txt").write_text("patient0004\n\n")
    (lists / "subgroup_testing.txt").write_text("patient0005\npatient0008\n")  # 0006 in no list
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["camus", "--root", root, "--out", out, "--view", "2CH"]) == 0
    err = capsys.readouterr().err
    assert f"split from {lists} lists: 4 train, 1 val, 1 test" in err
    df = pd.read_csv(out)
    assert dict(zip(df["subject"], df["split"])) == {
        "patient0001_2CH": "train", "patient0002_2CH": "train", "patient0003_2CH": "train",
        "patient0007_2CH": "train", "patient0004_2CH": "val", "patient0005_2CH": "test"}
    assert df.loc[df["subject"] == "patient0007_2CH", "image_ed"].iloc[0].endswith(
        "CAMUS/patient0007/patient0007_2CH_ED.nii.gz")
    sk = skipped_csv(out)
    reasons = dict(zip(sk["item"].map(lambda s: Path(s).name), sk["reason"]))
    assert reasons == {"patient0003_old": "folder name is not patientNNNN",
                       "patient0008": "no patient0008_2CH_{ED,ES}[_gt] .nii.gz/.nii/.mhd files",
                       "patient0006": "not in any database_split list"}
    assert "skipped patient0006: not in any database_split list" in err and "3 item(s) skipped" in err
    # the 4CH view has patient0008 too; a scheme asked for by name wins over the lists
    conf = tmp_path / "c.yaml"
    conf.write_text("splits: {default: s, schemes: {s: {train: rest, val: 0, test: 2}}}\n")
    assert run(["camus", "--root", root, "--out", out, "--view", "4CH", "--config", conf,
                "--split-scheme", "s"]) == 0
    assert "database_split lists are not used" in capsys.readouterr().err
    df = pd.read_csv(out)
    assert len(df) == 8 and df["split"].tolist() == ["train"] * 6 + ["test"] * 2
    assert len(skipped_csv(out)) == 1  # the stray folder only


# ---- EchoNet: videos without two tracings -----------------------------------------------------------

def _disc(fname, frame, cy, cx, r, n=7):
    rows = [(fname, cx, cy - r, cx, cy + r, frame)]
    for y in np.linspace(cy - 0.9 * r, cy + 0.9 * r, n):
        half = np.sqrt(max(r * r - (y - cy) ** 2, 0))
        rows.append((fname, cx - half, y, cx + half, y, frame))
    return rows


def test_echonet_skipped_videos_are_noted_and_listed(tmp_path, capsys):
    root = tmp_path / "EchoNet"
    (root / "Videos").mkdir(parents=True)
    names = ["0XA", "0XB", "0XC", "0XD"]
    traces = []
    for k, name in enumerate(names):
        write_avi_mjpeg(root / "Videos" / f"{name}.avi", (RNG.random((6, 32, 32)) * 200).astype(np.uint8))
        if k != 1:  # 0XB: no tracing at all
            traces += _disc(f"{name}.avi", 1, 16, 16, 10)
        if k not in (1, 2):  # 0XC: one traced frame only
            traces += _disc(f"{name}.avi", 4, 16, 16, 6)
    pd.DataFrame({"FileName": names, "Split": ["TRAIN", "TRAIN", "VAL", "TEST"]}).to_csv(root / "FileList.csv",
                                                                                      index=False)
    pd.DataFrame(traces, columns=["FileName", "X1", "Y1", "X2", "Y2", "Frame"]).to_csv(
        root / "VolumeTracings.csv", index=False)
    out = tmp_path / "o" / "samplesheet.csv"
    assert run(["echonet", "--root", root, "--out", out]) == 0
    err = capsys.readouterr().err
    assert "skipped 0XB.avi: 0 traced frame(s) in VolumeTracings.csv, 2 needed" in err
    assert "skipped 0XC.avi: 1 traced frame(s) in VolumeTracings.csv, 2 needed" in err
    assert "2 item(s) skipped" in err
    assert pd.read_csv(out)["subject"].tolist() == ["0XA", "0XD"]
    assert skipped_csv(out)["item"].tolist() == ["0XB.avi", "0XC.avi"]
