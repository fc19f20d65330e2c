"""Samplesheet schema and validation: one test per error, each naming the row and the problem."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from diffreg.cli import main
from diffreg.data.samplesheet import load_samplesheet, modalities, read_label_values, write_samplesheet
from diffreg.errors import InputError

SHAPE = (6, 5, 4)


def _img(path: Path, arr) -> str:
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4)), str(path))
    return path.name


def _labels(shape=SHAPE):
    lab = np.zeros(shape, dtype=np.uint8)
    lab[1:3] = 1
    lab[3:] = 2
    return lab


def make_sheet(tmp: Path, n: int = 3, rows: list[dict] | None = None, header: str | None = None) -> Path:
    """A valid samplesheet of n subjects (images 6x5x4), optionally with rows replaced."""
    rng = np.random.default_rng(0)
    lines = [header or "subject,split,labels,image_a,image_b,prealigned"]
    splits = ["train"] * (n - 2) + ["test", "test"]
    for i in range(n):
        sid = f"s{i}"
        row = {"subject": sid, "split": splits[i],
               "labels": _img(tmp / f"{sid}_lab.nii.gz", _labels()),
               "image_a": _img(tmp / f"{sid}_a.nii.gz", rng.random(SHAPE).astype(np.float32)),
               "image_b": _img(tmp / f"{sid}_b.nii.gz", rng.random(SHAPE).astype(np.float32)),
               "prealigned": "false"}
        if rows and i < len(rows) and rows[i]:
            row.update(rows[i])
        cols = lines[0].split(",")
        lines.append(",".join(str(row.get(c, "")) for c in cols))
    sheet = tmp / "samplesheet.csv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet


def expect_error(sheet: Path, *fragments: str, **kw) -> str:
    with pytest.raises(InputError) as err:
        load_samplesheet(sheet, **kw)
    msg = str(err.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_valid_sheet_resolves_relative_paths(tmp_path):
    df = load_samplesheet(make_sheet(tmp_path))
    assert modalities(df) == ["a", "b"]
    assert Path(df["image_a"].iloc[0]).is_absolute()
    assert Path(df["image_a"].iloc[0]) == (tmp_path / "s0_a.nii.gz").resolve()
    assert df["prealigned"].tolist() == [False, False, False]
    assert df["split"].tolist() == ["train", "test", "test"]


def test_absolute_paths_kept(tmp_path):
    sheet = make_sheet(tmp_path, rows=[{"image_a": str((tmp_path / "s1_a.nii.gz").resolve())}])
    df = load_samplesheet(sheet)
    assert df["image_a"].iloc[0] == str((tmp_path / "s1_a.nii.gz").resolve())


def test_missing_file(tmp_path):
    sheet = make_sheet(tmp_path, rows=[None, {"image_b": "nope.nii.gz"}])
    expect_error(sheet, "line 3 (s1)", "image_b", "file not found", "nope.nii.gz")


def test_unreadable_file(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image at all")
    sheet = make_sheet(tmp_path, rows=[{"image_a": "bad.nii.gz"}])
    expect_error(sheet, "line 2 (s0)", "image_a", "unreadable image")


def test_2d_3d_mismatch_within_subject(tmp_path):
    _img(tmp_path / "flat.nii.gz", np.random.default_rng(1).random((6, 5)).astype(np.float32))
    sheet = make_sheet(tmp_path, rows=[{"image_b": "flat.nii.gz"}])
    expect_error(sheet, "line 2 (s0)", "2D/3D mismatch", "image_b is 2D")


def test_2d_3d_mismatch_across_subjects(tmp_path):
    _img(tmp_path / "a2.nii.gz", np.random.default_rng(2).random((6, 5)).astype(np.float32))
    _img(tmp_path / "b2.nii.gz", np.random.default_rng(3).random((6, 5, 1)).astype(np.float32))  # (X, Y, 1) counts as 2D
    _img(tmp_path / "l2.nii.gz", _labels((6, 5)))
    sheet = make_sheet(tmp_path, rows=[None, None, {"image_a": "a2.nii.gz", "image_b": "b2.nii.gz",
                                                    "labels": "l2.nii.gz"}])
    expect_error(sheet, "line 4 (s2)", "2D/3D mismatch across subjects")


def test_shape_mismatch(tmp_path):
    _img(tmp_path / "big.nii.gz", np.random.default_rng(4).random((7, 5, 4)).astype(np.float32))
    sheet = make_sheet(tmp_path, rows=[None, {"image_b": "big.nii.gz"}])
    expect_error(sheet, "line 3 (s1)", "shape mismatch", "(6, 5, 4)", "(7, 5, 4)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(tmp_path, bad):
    arr = np.zeros(SHAPE, np.float32)
    arr[1, 1, 1] = bad
    _img(tmp_path / "nan.nii.gz", arr)
    sheet = make_sheet(tmp_path, rows=[None, None, {"image_a": "nan.nii.gz"}])
    expect_error(sheet, "line 4 (s2)", "1 NaN or Inf voxel(s)")


def test_label_values_outside_declared_set(tmp_path):
    lab = _labels()
    lab[0, 0, 0] = 7
    _img(tmp_path / "lab7.nii.gz", lab)
    sheet = make_sheet(tmp_path, rows=[None, {"labels": "lab7.nii.gz"}])
    expect_error(sheet, "line 3 (s1)", "label values [7] outside the declared set (0,1,2)", label_values="0,1,2")
    load_samplesheet(sheet, label_values="0-7")  # declared wider: fine


def test_label_values_from_labels_json(tmp_path):
    lab = _labels()
    lab[0, 0, 0] = 5
    _img(tmp_path / "lab5.nii.gz", lab)
    sheet = make_sheet(tmp_path, rows=[{"labels": "lab5.nii.gz"}])
    # no declared set: a label only one subject has is refused as a likely stray value, unless allowed
    expect_error(sheet, "label 5 is in 1 of the 3 labelled subjects (s0); labels found: 1, 2, 5")
    assert load_samplesheet(sheet, allow_missing_labels=True).attrs["labels_found"]["s0"] == [1, 2, 5]
    (tmp_path / "labels.json").write_text(json.dumps({"0": "bg", "1": "a", "2": "b"}))
    expect_error(sheet, "line 2 (s0)", "label values [5]")
    assert read_label_values(None, sheet) == {0, 1, 2}


def test_non_integer_and_negative_labels(tmp_path):
    _img(tmp_path / "frac.nii.gz", _labels().astype(np.float32) + 0.5)
    _img(tmp_path / "neg.nii.gz", _labels().astype(np.int16) - 1)
    expect_error(make_sheet(tmp_path, rows=[{"labels": "frac.nii.gz"}]), "non-integer")
    expect_error(make_sheet(tmp_path, rows=[{"labels": "neg.nii.gz"}]), "label values [-1]")


def test_empty_label_map(tmp_path):
    _img(tmp_path / "empty.nii.gz", np.zeros(SHAPE, np.uint8))
    expect_error(make_sheet(tmp_path, rows=[{"labels": "empty.nii.gz"}]), "label map is empty")


def test_duplicate_ids(tmp_path):
    sheet = make_sheet(tmp_path, rows=[None, None, {"subject": "s0"}])
    expect_error(sheet, "line 4 (s0)", "duplicate subject id (first on line 2)")


def test_missing_columns(tmp_path):
    sheet = make_sheet(tmp_path, header="subject,labels,image_a")
    expect_error(sheet, "missing column(s) split")
    sheet = make_sheet(tmp_path, header="subject,split,labels")
    expect_error(sheet, "image_<modality>")
    sheet = make_sheet(tmp_path, header="subject,split,image_a")
    expect_error(sheet, "missing column(s) labels")


def test_bad_split_and_prealigned(tmp_path):
    expect_error(make_sheet(tmp_path, rows=[{"split": "training"}]),
                 "line 2 (s0)", "split 'training' is not one of train, val, test")
    expect_error(make_sheet(tmp_path, rows=[None, {"prealigned": "maybe"}]), "line 3 (s1)", "prealigned 'maybe'")


def test_bad_subject_ids(tmp_path):
    expect_error(make_sheet(tmp_path, rows=[{"subject": ""}]), "line 2", "empty subject id")
    expect_error(make_sheet(tmp_path, rows=[{"subject": "a b"}]), "line 2 (a b)", "characters other than")


def test_rows_without_some_images_and_labels(tmp_path):
    # a train row may lack a modality and its labels; a test row needs labels
    sheet = make_sheet(tmp_path, rows=[{"image_b": "", "labels": ""}])
    df = load_samplesheet(sheet)
    assert df["image_b"].iloc[0] == ""
    expect_error(make_sheet(tmp_path, rows=[None, {"labels": ""}]), "line 3 (s1)", "test subjects need label maps")
    expect_error(make_sheet(tmp_path, rows=[{"image_a": "", "image_b": ""}]), "line 2 (s0)", "no image")


def test_per_modality_labels(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["subject,split,image_ed,image_es,labels_ed,labels_es"]
    for i, sp in enumerate(["train", "test", "test"]):
        names = [_img(tmp_path / f"p{i}_{k}.nii.gz", rng.random(SHAPE).astype(np.float32)) for k in ("ed", "es")]
        labs = [_img(tmp_path / f"p{i}_{k}_gt.nii.gz", _labels()) for k in ("ed", "es")]
        lines.append(",".join([f"p{i}", sp, *names, *labs]))
    sheet = tmp_path / "s.csv"
    sheet.write_text("\n".join(lines) + "\n")
    df = load_samplesheet(sheet)
    assert df["labels_es"].iloc[0].endswith("p0_es_gt.nii.gz")
    sheet.write_text(sheet.read_text().replace("labels_es", "labels_xx"))
    expect_error(sheet, "labels_xx name no image_<modality>")


def test_several_problems_reported_on_one_line(tmp_path):
    sheet = make_sheet(tmp_path, rows=[{"split": "x"}, {"image_a": "gone.nii.gz"}])
    msg = expect_error(sheet, "line 2 (s0)", "[and 1 more problem(s)]")
    assert "gone" not in msg


def test_no_image_check_still_checks_existence(tmp_path):
    sheet = make_sheet(tmp_path, rows=[None, {"image_b": "nope.nii.gz"}])
    expect_error(sheet, "file not found", check_images=False)


def test_missing_and_unparseable_sheet(tmp_path):
    expect_error(tmp_path / "none.csv", "samplesheet not found")
    (tmp_path / "empty.csv").write_text("subject,split,labels,image_a\n")
    expect_error(tmp_path / "empty.csv", "no rows")


def test_write_samplesheet_roundtrip(tmp_path):
    df = load_samplesheet(make_sheet(tmp_path))
    out = write_samplesheet(df, tmp_path / "abs" / "sheet.csv")
    df2 = load_samplesheet(out)
    assert df2["image_a"].tolist() == df["image_a"].tolist()
    assert out.read_text().splitlines()[1].endswith(",false")


def test_cli_validate(tmp_path, capsys):
    sheet = make_sheet(tmp_path)
    assert main(["validate", "--input", str(sheet), "--label-values", "0,1,2", "--out", str(tmp_path / "v" / "ok.csv")]) == 0
    assert "OK, 3 subjects (train 1, val 0, test 2), modalities a, b" in capsys.readouterr().out
    assert (tmp_path / "v" / "run.json").exists()
    bad = make_sheet(tmp_path, rows=[None, {"image_b": "nope.nii.gz"}])
    out = tmp_path / "w" / "bad.csv"
    assert main(["validate", "--input", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("diffreg: error:") and "line 3 (s1)" in err
    assert not out.exists()  # nothing half-written
    assert main(["validate", "--input", str(sheet), "--label-values", "a,b"]) == 2
    assert "--label-values a,b" in capsys.readouterr().err


def test_constant_image_refused(tmp_path):
    _img(tmp_path / "flat.nii.gz", np.zeros(SHAPE, np.float32))
    sheet = make_sheet(tmp_path, rows=[{"image_a": "flat.nii.gz"}])
    expect_error(sheet, "line 2 (s0)", "image_a", "constant image (every voxel is 0)")


def test_split_case_normalised_and_spaces_in_cells_refused(tmp_path):
    sheet = make_sheet(tmp_path, rows=[{"split": "TRAIN"}])
    assert list(load_samplesheet(sheet)["split"])[0] == "train"
    sheet = make_sheet(tmp_path, rows=[{"image_a": " s0_a.nii.gz"}])
    expect_error(sheet, "line 2 (s0)", "image_a: space around 's0_a.nii.gz'; remove the spaces")
    sheet = make_sheet(tmp_path, header="subject, split,labels,image_a,image_b,prealigned")
    expect_error(sheet, "space around column name(s) ' split'")


def test_validate_label_names_file(tmp_path, capsys):
    sheet = make_sheet(tmp_path)
    names = tmp_path / "names" / "labels.json"
    names.parent.mkdir()
    names.write_text(json.dumps({"0": "bg", "1": "one"}))
    assert main(["validate", "--input", str(sheet), "--label-names", str(names)]) == 2
    assert "label values [2] outside the declared set (0,1)" in capsys.readouterr().err
    names.write_text("{bad")
    assert main(["validate", "--input", str(sheet), "--label-names", str(names)]) == 2
    assert f"{names}: invalid JSON" in capsys.readouterr().err
