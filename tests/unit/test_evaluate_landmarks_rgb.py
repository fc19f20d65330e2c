"""Landmarks and colour versions reaching `diffreg evaluate` (DiffuseMorph Fig. 6's landmark MSE,
Table 1's NMSE / SSIM on RGB faces), against values worked out by hand: landmarks moved by a known
constant shift, RGB images moved by a known field."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diffreg import metrics, spatial
from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.evaluation_config import EvalConfig
from diffreg.metrics_table import read_metrics
from diffreg.experiments import parse_experiment, read_yaml
from diffreg.io import write_field, write_image
from diffreg.planner import Planner

SHAPE = (24, 20)
SHIFT = np.array([3.0, -4.0])      # moving landmark = fixed landmark + SHIFT: |SHIFT|^2 = 25
POINTS = np.array([[6.0, 8.0], [12.5, 10.0], [17.0, 12.5]])
NAMES = ["eye", "nose", "mouth"]


def write_pair(root: Path, moving_subject="s1", fixed_subject="s1", moving=None, fixed=None) -> dict:
    """Grey images and labels of moving (modality neutral) and fixed (expression), named as
    PREPROCESS names them; returns the run.json keys."""
    img = root / "images"
    lab = np.zeros(SHAPE, np.int16)
    lab[4:20, 4:16] = 1
    grey = blob((0, 0))
    files = {"moving": f"{moving_subject}_neutral.nii.gz", "fixed": f"{fixed_subject}_expression.nii.gz",
             "moving_labels": f"{moving_subject}_neutral_labels.nii.gz",
             "fixed_labels": f"{fixed_subject}_expression_labels.nii.gz"}
    for key, arr in (("moving", grey if moving is None else moving), ("fixed", grey if fixed is None else fixed),
                     ("moving_labels", lab), ("fixed_labels", lab)):
        write_image(img / files[key], arr)
    return files


def write_registration(root: Path, files: dict, disp: np.ndarray, steps: list[tuple[float, np.ndarray]] = ()) -> Path:
    reg = root / "regs" / "m__p"
    reg.mkdir(parents=True, exist_ok=True)
    write_field(reg / "disp.nii.gz", disp)
    for k, (_, u) in enumerate(steps):
        write_field(reg / f"disp_step{k}.nii.gz", u)
    run = {"method": "m", "pair": "p", **files}
    if steps:
        run["trajectory_times"] = [t for t, _ in steps]
    (reg / "run.json").write_text(json.dumps(run))
    return reg


def landmark_csv(path: Path, columns: dict[str, np.ndarray], names=NAMES) -> None:
    """columns: modality -> (N, 2) points, written as x_<modality>, y_<modality> (array order)."""
    table = {"name": names}
    for mod, pts in columns.items():
        table[f"x_{mod}"], table[f"y_{mod}"] = pts[:, 0], pts[:, 1]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table).to_csv(path, index=False)


def constant(vec) -> np.ndarray:
    disp = np.zeros((2, *SHAPE), np.float32)
    disp[0], disp[1] = vec
    return disp


def evaluate(root: Path, config: dict, out: str = "metrics.csv") -> pd.DataFrame:
    (root / "eval.json").write_text(json.dumps(config))
    path = root / out
    assert main(["evaluate", "--registration", str(root / "regs"), "--images-dir", str(root / "images"),
                 "--config", str(root / "eval.json"), "--out", str(path)]) == 0
    return read_metrics(path)


def value(df: pd.DataFrame, metric: str, label: str = "all") -> float:
    sel = df[(df["metric"] == metric) & (df["label"] == label)]
    assert len(sel) == 1, (metric, label, len(sel))
    return float(sel["value"].iloc[0])


# ----------------------------------------------------------------------------- landmarks

def test_landmark_error_of_identity_shift_and_trajectory(tmp_path):
    """q = p + s: identity scores |s|^2 = 25, the field u = s scores 0, the trajectory zeta * s at
    zeta = 0, 0.5, 1 scores (1 - zeta)^2 |s|^2 = 25, 6.25, 0 (mean 31.25 / 3)."""
    files = write_pair(tmp_path)
    landmark_csv(tmp_path / "images" / "s1_landmarks.csv", {"neutral": POINTS + SHIFT, "expression": POINTS})
    steps = [(z, constant(z * SHIFT)) for z in (0.0, 0.5, 1.0)]
    write_registration(tmp_path, files, constant(SHIFT), steps)
    df = evaluate(tmp_path, {"landmarks": True})
    assert value(df, "landmark_mse") == pytest.approx(0.0, abs=1e-10)
    assert value(df, "landmark_mse_before") == pytest.approx(25.0)
    for label, expect in (("t=0", 25.0), ("t=0.5", 6.25), ("t=1", 0.0)):
        assert value(df, "landmark_mse_continuous", label) == pytest.approx(expect, abs=1e-9)
    assert value(df, "landmark_mse_continuous", "mean") == pytest.approx(31.25 / 3)
    # not asked for: not scored
    df = evaluate(tmp_path, {}, "plain.csv")
    assert not df["metric"].str.startswith("landmark").any()


def test_landmarks_between_subjects_are_matched_by_name(tmp_path):
    """Moving and fixed subjects with their own files; a landmark only one of them has (or with a
    missing coordinate) is left out, so one 5-voxel outlier among two exact ones gives 25 / 2."""
    files = write_pair(tmp_path, "s1", "s2")
    moving = POINTS + SHIFT
    moving[0] += [3.0, 4.0]                        # eye: 5 voxels off the shift
    landmark_csv(tmp_path / "images" / "s1_landmarks.csv", {"neutral": np.vstack([moving, [[1.0, 1.0]]])},
                 NAMES + ["chin"])
    fixed = POINTS.copy()
    fixed[2] = np.nan                              # mouth not found on the fixed image
    landmark_csv(tmp_path / "images" / "s2_landmarks.csv", {"expression": fixed})
    write_registration(tmp_path, files, constant(SHIFT))
    df = evaluate(tmp_path, {"landmarks": True, "metrics": ["landmark_mse"]})
    assert value(df, "landmark_mse") == pytest.approx(25.0 / 2)     # eye 25, nose 0 (mouth, chin left out)


def test_missing_landmarks_are_nan_not_an_error(tmp_path):
    files = write_pair(tmp_path, "s1", "s2")
    steps = [(0.5, constant(0.5 * SHIFT)), (1.0, constant(SHIFT))]
    write_registration(tmp_path, files, constant(SHIFT), steps)
    df = evaluate(tmp_path, {"landmarks": True})                       # no landmark file at all
    lm = df[df["metric"].str.startswith("landmark")]
    assert set(lm["metric"]) == {"landmark_mse", "landmark_mse_before", "landmark_mse_continuous"}
    assert lm["value"].isna().all() and len(lm) == 2 + 3           # t=0.5, t=1, mean
    # only the fixed subject has a file, or it lacks the moving modality's columns: NaN too
    landmark_csv(tmp_path / "images" / "s2_landmarks.csv", {"expression": POINTS})
    assert np.isnan(value(evaluate(tmp_path, {"landmarks": True}, "b.csv"), "landmark_mse"))
    landmark_csv(tmp_path / "images" / "s1_landmarks.csv", {"expression": POINTS})
    assert np.isnan(value(evaluate(tmp_path, {"landmarks": True}, "c.csv"), "landmark_mse"))


def test_a_malformed_landmark_file_is_a_one_line_error(tmp_path, capsys):
    files = write_pair(tmp_path)
    (tmp_path / "images" / "s1_landmarks.csv").write_text("name,x_neutral,y_neutral,x_expression,y_expression\n"
                                                          "eye,1,2,3,four\n")
    write_registration(tmp_path, files, constant(SHIFT))
    (tmp_path / "eval.json").write_text(json.dumps({"landmarks": True}))
    assert main(["evaluate", "--registration", str(tmp_path / "regs"), "--images-dir", str(tmp_path / "images"),
                 "--config", str(tmp_path / "eval.json"), "--out", str(tmp_path / "x.csv")]) != 0
    err = capsys.readouterr().err
    assert "s1_landmarks.csv: row 2" in err and "not numbers" in err


# ----------------------------------------------------------------------------- RGB

def blob(centre_shift, scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A Gaussian blob in the middle of SHAPE (below 1e-8 at the border), moved by `centre_shift`;
    with three scales, an (X, Y, 3) colour image of three different channels."""
    x, y = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in SHAPE], indexing="ij")
    cx, cy = 11 + centre_shift[0], 9 + centre_shift[1]
    chans = [s * np.exp(-((x - cx) ** 2 / (3 + k) + (y - cy) ** 2 / (4 + k)))
             for k, s in enumerate(scale)]
    out = np.stack(chans, -1).astype(np.float32)
    return out[..., 0] if len(scale) == 1 else out


def write_rgb(root: Path, subject: str, modality: str, arr: np.ndarray) -> None:
    write_image(root / "images" / f"{subject}_{modality}.rgb.nii.gz", arr[:, :, None, :])   # a 2D vector image


def test_rgb_warped_by_the_true_field_scores_nmse_zero(tmp_path):
    """Moving RGB = fixed RGB moved by 2 voxels on axis 0 (fixed(x) = moving(x + 2)): the true
    field u = (2, 0) gives NMSE 0 and SSIM 1 on RGB, whatever the grey images registered."""
    colours = (1.0, 0.6, 0.3)
    files = write_pair(tmp_path, moving=blob((2, 0), (1.0,)), fixed=blob((0, 3), (1.0,)))   # grey: off by 3
    write_rgb(tmp_path, "s1", "neutral", blob((2, 0), colours))
    write_rgb(tmp_path, "s1", "expression", blob((0, 0), colours))
    write_registration(tmp_path, files, constant((2.0, 0.0)))
    rgb = evaluate(tmp_path, {"score_on": "rgb", "metrics": ["nmse", "ssim", "mse"]})
    assert value(rgb, "nmse") == pytest.approx(0.0, abs=1e-10)
    assert value(rgb, "ssim") == pytest.approx(1.0, abs=1e-9)
    grey = evaluate(tmp_path, {"metrics": ["nmse", "ssim"]}, "grey.csv")   # the default: the grey images
    assert value(grey, "nmse") > 0.1


def test_rgb_scores_are_the_per_channel_grey_scores_combined(tmp_path):
    """A wrong field (u = (1, 1) for a (2, 0) motion): SSIM and MSE on RGB are the means of the three
    channels scored as grey images, NMSE the channels' squared errors over their squared norms."""
    colours = (1.0, 0.6, 0.3)
    moving, fixed = blob((2, 0), colours), blob((0, 0), colours)
    disp = constant((1.0, 1.0))
    files = write_pair(tmp_path)
    write_rgb(tmp_path, "s1", "neutral", moving)
    write_rgb(tmp_path, "s1", "expression", fixed)
    write_registration(tmp_path, files, disp)
    rgb = evaluate(tmp_path, {"score_on": "rgb", "metrics": ["nmse", "ssim", "mse"]})
    per = []
    for c in range(3):             # each channel as its own grey registration
        sub = tmp_path / f"c{c}"
        write_registration(sub, write_pair(sub, moving=moving[..., c], fixed=fixed[..., c]), disp)
        per.append(evaluate(sub, {"metrics": ["nmse", "ssim", "mse"]}))
    assert value(rgb, "ssim") == pytest.approx(np.mean([value(d, "ssim") for d in per]), rel=1e-6)
    assert value(rgb, "mse") == pytest.approx(np.mean([value(d, "mse") for d in per]), rel=1e-5)
    norms = [float(np.sum(fixed[..., c].astype(np.float64) ** 2)) for c in range(3)]
    assert value(rgb, "nmse") == pytest.approx(
        sum(value(d, "nmse") * n for d, n in zip(per, norms)) / sum(norms), rel=1e-5)
    # and by hand: the moving channels warped by the field
    warped = np.stack([spatial.warp_numpy(moving[..., c], disp, mode="linear") for c in range(3)], -1)
    assert value(rgb, "nmse") == pytest.approx(metrics.nmse(warped, fixed), rel=1e-5)
    assert 0.01 < value(rgb, "nmse") < 1


def test_pairs_without_rgb_keep_grey_and_a_one_sided_rgb_is_an_error(tmp_path, capsys):
    """Neither subject has an RGB version (a grey photograph): its grey images are scored, which is
    what its RGB version (the grey image in every channel) would score; one side only: an error."""
    grey_m, grey_f = blob((2, 0), (1.0,)), blob((0, 0), (1.0,))
    files = write_pair(tmp_path, moving=grey_m, fixed=grey_f)
    write_registration(tmp_path, files, constant((1.0, 0.0)))
    plain = evaluate(tmp_path, {"metrics": ["nmse", "ssim"]})
    fallback = evaluate(tmp_path, {"score_on": "rgb", "metrics": ["nmse", "ssim"]}, "fb.csv")
    assert "no rgb version" in capsys.readouterr().err
    write_rgb(tmp_path, "s1", "neutral", np.repeat(grey_m[..., None], 3, -1))
    write_rgb(tmp_path, "s1", "expression", np.repeat(grey_f[..., None], 3, -1))
    replicated = evaluate(tmp_path, {"score_on": "rgb", "metrics": ["nmse", "ssim"]}, "rep.csv")
    for m in ("nmse", "ssim"):
        assert value(fallback, m) == value(plain, m)
        assert value(replicated, m) == pytest.approx(value(plain, m), rel=1e-6)
    (tmp_path / "images" / "s1_expression.rgb.nii.gz").unlink()
    assert main(["evaluate", "--registration", str(tmp_path / "regs"), "--images-dir", str(tmp_path / "images"),
                 "--config", str(tmp_path / "eval.json"), "--out", str(tmp_path / "x.csv")]) != 0
    assert "s1_expression.rgb.nii.gz: not found" in capsys.readouterr().err


def test_rgb_on_another_grid_is_an_error(tmp_path, capsys):
    files = write_pair(tmp_path)
    write_rgb(tmp_path, "s1", "neutral", blob((0, 0), (1.0, 0.5, 0.2)))
    shifted = np.eye(4)
    shifted[0, 3] = 5.0                            # e.g. cropped by preprocessing, the RGB was not
    write_image(tmp_path / "images" / "s1_expression.rgb.nii.gz", blob((0, 0), (1.0, 0.5, 0.2))[:, :, None, :],
                shifted)
    write_registration(tmp_path, files, constant((0.0, 0.0)))
    (tmp_path / "eval.json").write_text(json.dumps({"score_on": "rgb"}))
    assert main(["evaluate", "--registration", str(tmp_path / "regs"), "--images-dir", str(tmp_path / "images"),
                 "--config", str(tmp_path / "eval.json"), "--out", str(tmp_path / "x.csv")]) != 0
    assert "affine differs from the registered image" in capsys.readouterr().err


# ----------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("raw, message", [({"landmarks": "yes"}, "landmarks must be true or false"),
                                          ({"score_on": "cmyk"}, "score_on must be one of rgb"),
                                          ({"landmark": True}, "unknown key(s) landmark")])
def test_eval_config_rejects_bad_keys(raw, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EvalConfig.from_dict(raw)


def test_faces_task_declares_landmarks_and_rgb_and_the_plan_passes_them_on():
    yaml = Path(__file__).resolve().parents[2] / "experiments" / "diffusemorph.yaml"
    doc = read_yaml(yaml)
    exp = parse_experiment(doc, "diffusemorph", yaml, str(yaml))
    assert exp.tasks["faces_2d"].landmarks is True and exp.tasks["faces_2d"].score_on == "rgb"
    assert exp.tasks["rafd_2d"].score_on is None            # no RaFD adapter declares an RGB modality
    assert exp.artifacts["fig6"].claim.check["metric"] == "landmark_mse_continuous"
    plan = Planner([exp], {"toy": {2, 3}, "faces": {2}, "acdc": {3}}, profile="test").build()
    faces = [r for r in plan.registrations.values() if r["dataset"] == "faces"]
    acdc = [r for r in plan.registrations.values() if r["dataset"] == "acdc"]
    assert faces and acdc
    for r in faces:
        cfg = plan.evals[r["eval_config"]]
        assert cfg["landmarks"] is True and cfg["score_on"] == "rgb"
        EvalConfig.from_dict(cfg)                                  # what `diffreg evaluate --config` reads
    assert all("landmarks" not in plan.evals[r["eval_config"]] for r in acdc)
    doc["tasks"]["faces_2d"]["score_on"] = "cmyk"
    with pytest.raises(InputError, match="tasks.faces_2d.score_on"):
        parse_experiment(doc, "diffusemorph", yaml, str(yaml))
