"""`diffreg evaluate` on registration outputs made in code, against known answers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.metrics_table import COLUMNS, read_metrics
from diffreg.io import write_field, write_image

SHAPE = (24, 20, 16)
BOX = 8                      # side of the label-1 box along axis 0
LABEL_NAMES = {"0": "background", "1": "CSF", "2": "grey matter", "3": "white matter"}


def box_labels(shape=SHAPE, shift=0) -> np.ndarray:
    """Label 1: an 8-voxel slab along axis 0, label 2: a 16-voxel block beside it (both moved by
    ``shift`` along axis 0, never reaching the border for shift <= 3);
    label 3 (in labels.json) is absent from every map."""
    lab = np.zeros(shape, np.int16)
    lab[6 + shift:6 + BOX + shift, 4:16, 4:12] = 1
    lab[4 + shift:20 + shift, 16:19, 2:14] = 2
    return lab


def smooth_image(shape=SHAPE, shift=0) -> np.ndarray:
    x = np.arange(shape[0])[:, None, None] - shift
    y = np.arange(shape[1])[None, :, None]
    z = np.arange(shape[2])[None, None, :]
    img = 0.5 + 0.25 * np.sin(2 * np.pi * x / shape[0]) * np.cos(2 * np.pi * y / shape[1]) + 0.2 * z / shape[2]
    return np.broadcast_to(img, shape).astype(np.float32)


def constant_field(shift_x: float, shape=SHAPE) -> np.ndarray:
    disp = np.zeros((len(shape), *shape), np.float32)
    disp[0] = shift_x
    return disp


def make_registration(root: Path, method: str, pair: str, disp: np.ndarray, moving_shift: int = 0,
                      runtime: float = 1.25, images_sub: str = "images", **run_extra) -> Path:
    """A `<method>__<pair>` output folder and the pair's images (fixed: unshifted; moving: shifted
    by ``moving_shift`` voxels along axis 0)."""
    shape = disp.shape[1:]
    img_dir = root / images_sub
    names = {"fixed": f"{pair}_fixed.nii.gz", "moving": f"{pair}_moving.nii.gz",
             "fixed_labels": f"{pair}_fixed_labels.nii.gz", "moving_labels": f"{pair}_moving_labels.nii.gz"}
    write_image(img_dir / names["fixed"], smooth_image(shape))
    write_image(img_dir / names["moving"], smooth_image(shape, moving_shift))
    write_image(img_dir / names["fixed_labels"], box_labels(shape))
    write_image(img_dir / names["moving_labels"], box_labels(shape, moving_shift))
    reg = root / "registrations" / f"{method}__{pair}"
    reg.mkdir(parents=True, exist_ok=True)
    write_field(reg / "disp.nii.gz", disp)
    run = {"method": method, "pair": pair, **names, "wall_time_s": runtime + 3.0,
           "register_time_s": runtime, "threads": 2, "device": "cpu",
           "versions": {"torch": "2.x", "diffreg": "0.1.0"}, "git_commit": "abc123", **run_extra}
    (reg / "run.json").write_text(json.dumps(run))
    return reg


def evaluate(tmp_path: Path, regs, *extra) -> pd.DataFrame:
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABEL_NAMES))
    out = tmp_path / "metrics.csv"
    rc = main(["evaluate", "--registration", *map(str, regs), "--images-dir", str(tmp_path / "images"),
               "--label-names", str(labels), "--experiment", "exp", "--dataset", "toy3d",
               "--out", str(out), *extra])
    assert rc == 0
    return read_metrics(out)


def value(df, metric, label="all", method=None):
    sel = df[(df["metric"] == metric) & (df["label"] == label)]
    if method:
        sel = sel[sel["method"] == method]
    assert len(sel) == 1, (metric, label, len(sel))
    return float(sel["value"].iloc[0])


def test_identity_field_changes_nothing(tmp_path):
    reg = make_registration(tmp_path, "id", "p1", constant_field(0.0), moving_shift=2)
    df = evaluate(tmp_path, [reg])
    assert list(pd.read_csv(tmp_path / "metrics.csv").columns) == COLUMNS
    for label in ("CSF", "grey matter", "mean"):
        assert value(df, "dice", label) == value(df, "dice_before", label)
    assert value(df, "dice", "CSF") == pytest.approx((BOX - 2) / BOX)
    assert value(df, "dice", "grey matter") == pytest.approx((16 - 2) / 16)
    assert value(df, "pct_jac_nonpos") == 0.0
    assert value(df, "sdlogj") == pytest.approx(0.0, abs=1e-12)
    assert value(df, "runtime_s") == 1.25
    mse_before = float(np.mean((smooth_image(shift=2).astype(np.float64) - smooth_image()) ** 2))
    assert value(df, "mse") == pytest.approx(mse_before, rel=1e-6)
    assert set(df["experiment"]) == {"exp"} and set(df["dataset"]) == {"toy3d"}


@pytest.mark.parametrize("shift", [1, 3])
def test_known_shift_gives_known_dice(tmp_path, shift):
    """Same images, field a constant shift s: the label-1 slab overlaps by BOX - s voxels."""
    reg = make_registration(tmp_path, "shift", "p1", constant_field(float(shift)), moving_shift=0)
    df = evaluate(tmp_path, [reg])
    csf = (BOX - shift) / BOX
    assert value(df, "dice", "CSF") == pytest.approx(csf)
    assert value(df, "dice_before", "CSF") == 1.0
    # label 2 spans 16 voxels of axis 0, away from the border: 16 - s of them stay inside it
    gm = (16 - shift) / 16
    assert value(df, "dice", "grey matter") == pytest.approx(gm)
    # white matter is in labels.json but in neither map: NaN, and left out of the mean
    assert math.isnan(value(df, "dice", "white matter"))
    assert value(df, "dice", "mean") == pytest.approx((csf + gm) / 2)
    assert value(df, "pct_jac_nonpos") == 0.0
    assert value(df, "sdlogj") == pytest.approx(0.0, abs=1e-12)


def test_correct_shift_recovers_the_moving_labels(tmp_path):
    reg = make_registration(tmp_path, "good", "p1", constant_field(3.0), moving_shift=3)
    df = evaluate(tmp_path, [reg])
    assert value(df, "dice_before", "CSF") == pytest.approx((BOX - 3) / BOX)
    assert value(df, "dice", "CSF") == 1.0
    assert value(df, "dice", "grey matter") == 1.0


def test_2d_shift_and_small_images(tmp_path):
    """2D (X, Y) images: a constant shift s of identical images gives Dice (L - s) / L; images
    smaller than the SSIM window get no SSIM row rather than an error."""
    for shape, has_ssim in (((32, 28), True), ((10, 12), False)):
        lab = np.zeros(shape, np.int16)
        lab[2:8, 2:9] = 1
        img = (lab * 0.8 + 0.1).astype(np.float32)
        root = tmp_path / f"{shape[0]}"
        for name, arr in (("f.nii.gz", img), ("fl.nii.gz", lab)):
            write_image(root / "images" / name, arr)
        reg = root / "r"
        reg.mkdir()
        disp = np.zeros((2, *shape), np.float32)
        disp[1] = 2.0
        write_field(reg / "disp.nii.gz", disp)
        (reg / "run.json").write_text(json.dumps({"method": "m", "pair": "p", "moving": "f.nii.gz",
                                                  "fixed": "f.nii.gz", "moving_labels": "fl.nii.gz",
                                                  "fixed_labels": "fl.nii.gz", "register_time_s": 0.5}))
        out = root / "m.csv"
        assert main(["evaluate", "--registration", str(reg), "--images-dir", str(root / "images"),
                     "--out", str(out)]) == 0
        df = read_metrics(out)
        assert value(df, "dice", "label 1") == pytest.approx((7 - 2) / 7)
        assert value(df, "dice_before", "label 1") == 1.0
        assert value(df, "pct_jac_nonpos") == 0.0 and value(df, "pct_nondiff") == 0.0
        assert value(df, "runtime_s") == 0.5            # the baselines' key for the same time
        assert ("ssim" in set(df["metric"])) == has_ssim


def test_folded_field_is_counted(tmp_path):
    """u_x(x) = -2 (x - c) inside a slab: d(x + u_x)/dx = -1 there, so det J < 0 in that slab."""
    disp = constant_field(0.0)
    x = np.arange(SHAPE[0], dtype=np.float32)
    slab = slice(10, 14)
    disp[0, slab] = (-2.0 * (x[slab] - 11.5))[:, None, None]
    reg = make_registration(tmp_path, "fold", "p1", disp)
    df = evaluate(tmp_path, [reg])
    det_x = np.gradient(x + disp[0, :, 0, 0])
    expected = 100.0 * np.mean(det_x <= 0)
    assert expected > 0
    assert value(df, "pct_jac_nonpos") == pytest.approx(expected)


def test_folder_of_registrations_and_names_without_label_json(tmp_path):
    make_registration(tmp_path, "a", "p1", constant_field(0.0))
    make_registration(tmp_path, "b", "p2", constant_field(1.0), images_sub="images/sub")
    out = tmp_path / "m.csv"
    assert main(["evaluate", "--registration", str(tmp_path / "registrations"),
                 "--images-dir", str(tmp_path / "images"), "--out", str(out)]) == 0
    df = read_metrics(out)
    assert sorted(set(df["method"])) == ["a", "b"]
    assert {"label 1", "label 2", "mean", "all"} == set(df["label"])
    assert value(df, "dice", "label 1", method="b") == pytest.approx((BOX - 1) / BOX)
    assert (out.parent / "run.json").is_file()
    # one file staged into two folders is the same input; two different files of one name are not
    (tmp_path / "images" / "copy").mkdir()
    (tmp_path / "images" / "copy" / "p1_fixed.nii.gz").write_bytes((tmp_path / "images" / "p1_fixed.nii.gz").read_bytes())
    assert main(["evaluate", "--registration", str(tmp_path / "registrations" / "a__p1"),
                 "--images-dir", str(tmp_path / "images"), "--out", str(out)]) == 0
    write_image(tmp_path / "images" / "copy" / "p1_fixed.nii.gz", smooth_image(shift=1))
    with pytest.raises(Exception, match="p1_fixed.nii.gz: ambiguous"):
        from diffreg.registration_outputs import ImageIndex
        ImageIndex([tmp_path / "images"]).find("p1_fixed.nii.gz")


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("diffreg: error: ")
    return err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    reg = make_registration(tmp_path, "m", "p1", constant_field(0.0))
    images = str(tmp_path / "images")
    out = tmp_path / "bad.csv"
    base = ["evaluate", "--images-dir", images, "--out", str(out)]

    assert "no run.json" in _error(capsys, base + ["--registration", str(tmp_path / "images")])
    assert "not found" in _error(capsys, base + ["--registration", str(tmp_path / "nope")])

    (tmp_path / "labels.json").write_text("[1, 2]")
    assert "labels.json" in _error(capsys, base + ["--registration", str(reg), "--label-names",
                                                   str(tmp_path / "labels.json")])

    write_field(reg / "disp.nii.gz", constant_field(0.0, shape=(24, 20, 12)))
    assert "does not match displacement" in _error(capsys, base + ["--registration", str(reg)])

    nan_disp = constant_field(0.0)
    nan_disp[0, 0, 0, 0] = np.nan
    write_field(reg / "disp.nii.gz", nan_disp)
    assert "NaN" in _error(capsys, base + ["--registration", str(reg)])

    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    write_field(reg / "disp.nii.gz", constant_field(0.0), flipped)
    assert "orientation LAS differs" in _error(capsys, base + ["--registration", str(reg)])

    write_field(reg / "disp.nii.gz", constant_field(0.0))
    (tmp_path / "images" / "p1_fixed.nii.gz").unlink()
    assert "p1_fixed.nii.gz: not found" in _error(capsys, base + ["--registration", str(reg)])

    run = json.loads((reg / "run.json").read_text())
    del run["fixed_labels"]
    (reg / "run.json").write_text(json.dumps(run))
    assert "fixed_labels" in _error(capsys, base + ["--registration", str(reg)])
    assert not out.exists()


def test_empty_label_map_is_an_input_error(tmp_path, capsys):
    reg = make_registration(tmp_path, "m", "p1", constant_field(0.0))
    write_image(tmp_path / "images" / "p1_fixed_labels.nii.gz", np.zeros(SHAPE, np.int16))
    err = _error(capsys, ["evaluate", "--registration", str(reg), "--images-dir", str(tmp_path / "images"),
                          "--out", str(tmp_path / "m.csv")])
    assert "empty label map" in err


def test_read_metrics_rejects_malformed_csv(tmp_path):
    from diffreg.errors import InputError
    bad = tmp_path / "bad.csv"
    bad.write_text("experiment,method,value\nx,y,1\n")
    with pytest.raises(InputError, match="columns must be"):
        read_metrics(bad)
    bad.write_text(",".join(COLUMNS) + "\ne,a,m,d,p,all,sdlogj,abc\n")
    with pytest.raises(InputError, match="row 2"):
        read_metrics(bad)


# --- evaluation config: label unions, metric list, experiment and dataset columns ----------------
def union_registration(root: Path) -> Path:
    """2D maps under the identity field. Fixed: label 1 rows 2:6, label 2 rows 6:10 (cols 2:10),
    label 3 rows 11:14 x cols 2:6. Moving: the 1/2 boundary moved to row 8, label 3 one column
    right. So Dice 1 = 2*32/(48+32), Dice 2 = 2*16/(16+32), Dice 3 = 2*9/(12+12), while the union
    {1, 2} (e.g. LV = blood pool + myocardium) matches exactly and {1, 2, 3} overlaps 73 of 76."""
    fixed, moving = np.zeros((16, 12), np.int16), np.zeros((16, 12), np.int16)
    fixed[2:6, 2:10], fixed[6:10, 2:10], fixed[11:14, 2:6] = 1, 2, 3
    moving[2:8, 2:10], moving[8:10, 2:10], moving[11:14, 3:7] = 1, 2, 3
    image = lambda lab: ((lab > 0) * 0.8 + 0.1).astype(np.float32)
    for name, arr in (("f.nii.gz", image(fixed)), ("m.nii.gz", image(moving)), ("fl.nii.gz", fixed),
                      ("ml.nii.gz", moving)):
        write_image(root / "images" / name, arr)
    reg = root / "r"
    reg.mkdir()
    write_field(reg / "disp.nii.gz", np.zeros((2, 16, 12), np.float32))
    (reg / "run.json").write_text(json.dumps({"method": "m", "pair": "p", "moving": "m.nii.gz", "fixed": "f.nii.gz",
                                              "moving_labels": "ml.nii.gz", "fixed_labels": "fl.nii.gz",
                                              "register_time_s": 0.5, "dataset": "from_run"}))
    return reg


def evaluate_with_config(root: Path, config: dict, *extra) -> pd.DataFrame:
    (root / "eval.json").write_text(json.dumps(config))
    out = root / "m.csv"
    assert main(["evaluate", "--registration", str(root / "r"), "--images-dir", str(root / "images"),
                 "--config", str(root / "eval.json"), "--out", str(out), *extra]) == 0
    return read_metrics(out)


def test_label_unions_score_the_merged_masks(tmp_path):
    union_registration(tmp_path)
    df = evaluate_with_config(tmp_path, {"experiment": "dgir", "dataset": "acdc", "metrics": None,
                                         "label_unions": {"LV": [1, 2], "all3": [1, 2, 3]}},
                              "--experiment", "main", "--dataset", "dgir")   # the config wins
    singles = {"label 1": 2 * 32 / 80, "label 2": 2 * 16 / 48, "label 3": 2 * 9 / 24}
    for label, dice in singles.items():
        assert value(df, "dice", label) == pytest.approx(dice)
    assert value(df, "dice", "LV") == 1.0
    assert value(df, "dice", "all3") == pytest.approx(73 / 76)
    assert value(df, "dice", "mean") == pytest.approx(np.mean(list(singles.values())))   # unions left out
    assert value(df, "dice_before", "LV") == 1.0                     # every per-label metric, per union
    assert value(df, "hd95_vox", "LV") == 0.0 and value(df, "hd95_mm", "LV") == 0.0
    assert set(df["experiment"]) == {"dgir"} and set(df["dataset"]) == {"acdc"}


def test_metrics_list_restricts_what_is_written(tmp_path):
    union_registration(tmp_path)
    df = evaluate_with_config(tmp_path, {"label_unions": {"LV": [1, 2]}, "metrics": ["dice", "runtime_s"]})
    assert set(df["metric"]) == {"dice", "runtime_s"}
    assert set(df["label"]) == {"label 1", "label 2", "label 3", "mean", "LV", "all"}
    # without experiment and dataset in the config: the flags' defaults, then run.json
    assert set(df["experiment"]) == {"default"} and set(df["dataset"]) == {"from_run"}
    df = evaluate_with_config(tmp_path, {"metrics": ["sdlogj", "psnr"]})
    assert set(df["metric"]) == {"sdlogj", "psnr"} and set(df["label"]) == {"all"}


@pytest.mark.parametrize("config, message", [
    ({"unions": {}}, "unknown key(s) unions"),
    ({"metrics": ["dice", "dise"]}, "unknown metric(s) dise"),
    ({"label_unions": {"LV": [0, 1]}}, "label union LV: expected a list of nonzero label values"),
    ({"label_unions": {"mean": [1]}}, "'mean' is reserved"),
    ({"label_unions": {"label 1": [1, 2]}}, "label 1 are also names of single labels"),
])
def test_bad_eval_config_is_one_line(tmp_path, capsys, config, message):
    union_registration(tmp_path)
    (tmp_path / "eval.json").write_text(json.dumps(config))
    err = _error(capsys, ["evaluate", "--registration", str(tmp_path / "r"), "--images-dir", str(tmp_path / "images"),
                          "--config", str(tmp_path / "eval.json"), "--out", str(tmp_path / "m.csv")])
    assert message in err


def test_sets_score_each_set_under_its_own_config_as_single_calls_do(tmp_path, capsys):
    """--sets: one call, each set (its registrations' run.json method) under its config into its
    CSV; the values equal one call per set."""
    make_registration(tmp_path, "a", "p1", constant_field(0.0))
    make_registration(tmp_path, "a", "p2", constant_field(1.0), moving_shift=1)
    make_registration(tmp_path, "b", "p1", constant_field(1.0))
    configs = {}
    for name, unions in (("exp_a", {}), ("exp_b", {"csf+gm": [1, 2]})):
        configs[name] = tmp_path / f"{name}.json"
        configs[name].write_text(json.dumps({"experiment": name, "dataset": "toy3d", "label_unions": unions}))
    sets = tmp_path / "sets.csv"
    sets.write_text(f"label,config,out\na,{configs['exp_a']},{tmp_path / 'exp_a__a.csv'}\n"
                    f"b,{configs['exp_b']},{tmp_path / 'exp_b__b.csv'}\n")
    regs = str(tmp_path / "registrations")
    assert main(["evaluate", "--registration", regs, "--images-dir", str(tmp_path / "images"), "--sets", str(sets)]) == 0
    a, b = read_metrics(tmp_path / "exp_a__a.csv"), read_metrics(tmp_path / "exp_b__b.csv")
    assert set(a["method"]) == {"a"} and set(a["pair"]) == {"p1", "p2"} and set(a["experiment"]) == {"exp_a"}
    assert set(b["method"]) == {"b"} and set(b["pair"]) == {"p1"} and set(b["experiment"]) == {"exp_b"}
    assert "csf+gm" in set(b["label"]) and "csf+gm" not in set(a["label"])
    assert value(b, "dice", "label 1") == pytest.approx((BOX - 1) / BOX)   # a 1-voxel shift of an 8-voxel slab
    assert (tmp_path / "exp_a__a.run.json").is_file() and (tmp_path / "exp_b__b.run.json").is_file()
    for label, name in (("a", "exp_a"), ("b", "exp_b")):
        single = tmp_path / f"single_{label}.csv"
        assert main(["evaluate", "--registration", *sorted(str(p) for p in (tmp_path / "registrations").glob(f"{label}__*")),
                     "--images-dir", str(tmp_path / "images"), "--config", str(configs[name]), "--out", str(single)]) == 0
        pd.testing.assert_frame_equal(read_metrics(single).drop(columns="value"),
                                      read_metrics(tmp_path / f"{name}__{label}.csv").drop(columns="value"))
        assert np.allclose(read_metrics(single)["value"], read_metrics(tmp_path / f"{name}__{label}.csv")["value"],
                           equal_nan=True)
    capsys.readouterr()
    base = ["evaluate", "--registration", regs, "--images-dir", str(tmp_path / "images")]
    sets.write_text(f"label,config,out\nc,{configs['exp_a']},{tmp_path / 'c.csv'}\n")
    assert "set 'c' has no registration" in _error(capsys, base + ["--sets", str(sets)])
    sets.write_text(f"label,config,out\na,,{tmp_path / 'x.csv'}\nb,,{tmp_path / 'x.csv'}\n")
    assert "two sets write one file" in _error(capsys, base + ["--sets", str(sets)])
    assert "not both" in _error(capsys, base + ["--sets", str(sets), "--out", str(tmp_path / "y.csv")])
    assert "give --out" in _error(capsys, base)
