"""Continuous-deformation scoring: the moving image warped by each trajectory field against the
fixed subject's true frame at that time (DiffuseMorph Table 2's PSNR / NMSE)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from diffreg import spatial
from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.evaluation_config import check_trajectory
from diffreg.io import write_field, write_image


def _blob(shift: float, shape=(24, 24)) -> np.ndarray:
    y, x = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    return np.exp(-((y - 10 - shift) ** 2 + (x - 12) ** 2) / 20.0).astype(np.float32)


def test_trajectory_frames_are_scored_at_their_times(tmp_path):
    """Frames move a blob by 0, 2, 4 voxels (t = 0, 0.5, 1). A trajectory whose field at t = 0.5
    is the true half motion scores PSNR inf-like and NMSE 0 there; the field at t = 0.25 whose frame
    the subject lacks (a cine that could not be read) is NaN, and so is the frame at t = 0.75
    without a field."""
    img, reg = tmp_path / "img", tmp_path / "reg" / "m__p"
    img.mkdir(), reg.mkdir(parents=True)
    aff = np.eye(4)
    labels = (_blob(0) > 0.5).astype(np.int16)
    write_image(img / "s1_ed.nii.gz", _blob(0), aff)
    write_image(img / "s1_es.nii.gz", _blob(4), aff)
    write_image(img / "s1_f05.nii.gz", _blob(2), aff)
    write_image(img / "s1_f075.nii.gz", _blob(3), aff)
    write_image(img / "s1_labels_ed.nii.gz", labels, aff)
    write_image(img / "s1_labels_es.nii.gz", labels, aff)
    half = np.zeros((2, 24, 24), np.float32)
    half[0] = -2.0                                  # frame(x) = ED(x - 2): backward field -2 on axis 0
    full = 2 * half
    for k, u in enumerate([np.zeros_like(half), half, full]):
        write_field(reg / f"disp_step{k}.nii.gz", u, aff)
    write_field(reg / "disp.nii.gz", full, aff)
    run = {"method": "m", "pair": "p", "moving": "s1_ed.nii.gz", "fixed": "s1_es.nii.gz",
           "moving_labels": "s1_labels_ed.nii.gz", "fixed_labels": "s1_labels_es.nii.gz",
           "trajectory_times": [0.25, 0.5, 1.0]}
    (reg / "run.json").write_text(json.dumps(run))
    cfg = tmp_path / "eval.json"
    cfg.write_text(json.dumps({"metrics": ["psnr_continuous", "nmse_continuous"],
                               "trajectory": {"references": ["f025", "f05", "f075"], "times": [0.25, 0.5, 0.75]}}))
    out = tmp_path / "metrics.csv"
    assert main(["evaluate", "--registration", str(reg), "--images-dir", str(img), "--config", str(cfg),
                 "--out", str(out)]) == 0
    df = pd.read_csv(out).set_index(["label", "metric"])["value"]
    warped = spatial.warp_numpy(_blob(0), half, mode="linear")
    expected_nmse = float(np.sum((warped - _blob(2)) ** 2) / np.sum(_blob(2) ** 2))
    assert df[("t=0.5", "nmse_continuous")] == pytest.approx(expected_nmse, rel=1e-5, abs=1e-12)
    assert df[("t=0.5", "nmse_continuous")] < 1e-3            # the true half motion (up to the border)
    assert np.isnan(df[("t=0.75", "nmse_continuous")]) and np.isnan(df[("t=0.75", "psnr_continuous")])
    assert np.isnan(df[("t=0.25", "nmse_continuous")]) and np.isnan(df[("t=0.25", "psnr_continuous")])
    assert df[("mean", "nmse_continuous")] == pytest.approx(df[("t=0.5", "nmse_continuous")])
    assert df[("mean", "psnr_continuous")] > 30


@pytest.mark.parametrize("raw,msg", [
    ({"references": ["a"]}, "exactly the keys"),
    ({"references": [], "times": []}, "list of modality names"),
    ({"references": ["a", "b"], "times": [0.5]}, "2 numbers in \\(0, 1\\)"),
    ({"references": ["a"], "times": [1.0]}, "numbers in \\(0, 1\\)"),
])
def test_trajectory_config_errors(raw, msg):
    with pytest.raises(InputError, match=msg):
        check_trajectory(raw)


def test_trajectory_figure_rows_warp_by_each_step_and_add_the_true_frames(tmp_path):
    """Fig. 6/8's rows: the moving image warped by the field at each time in (0, 1), and the fixed
    subject's reference frames as a last row; a generated image becomes the Fig. 7 view."""
    from diffreg.registration_outputs import ImageIndex, find_registrations, load_pair
    from diffreg.report.qualitative import trajectory_rows
    from diffreg.report.figures import QualitativeRow
    from diffreg.report.figures.trajectory import generated_figure, trajectory_figure

    img, reg = tmp_path / "img", tmp_path / "reg" / "m__p"
    img.mkdir(), reg.mkdir(parents=True)
    aff = np.eye(4)
    labels = (_blob(0) > 0.5).astype(np.int16)
    for name, arr in {"s1_ed": _blob(0), "s1_es": _blob(4), "s1_f05": _blob(2), "s1_labels_ed": labels,
                      "s1_labels_es": labels}.items():
        write_image(img / f"{name}.nii.gz", arr, aff)
    half = np.zeros((2, 24, 24), np.float32)
    half[0] = -2.0
    for k, u in enumerate([np.zeros_like(half), half, 2 * half]):
        write_field(reg / f"disp_step{k}.nii.gz", u, aff)
    write_field(reg / "disp.nii.gz", 2 * half, aff)
    (reg / "run.json").write_text(json.dumps({
        "method": "m", "pair": "p", "moving": "s1_ed.nii.gz", "fixed": "s1_es.nii.gz",
        "moving_labels": "s1_labels_ed.nii.gz", "fixed_labels": "s1_labels_es.nii.gz",
        "trajectory_times": [0.0, 0.5, 1.0]}))
    images = ImageIndex([img])
    regs = find_registrations([tmp_path / "reg"])
    rows = [QualitativeRow("ours", load_pair(regs[0], images))]
    out, note = trajectory_rows(rows, regs, {"references": ["f05"], "times": [0.5]}, images)
    assert [r.method for r in out] == ["ours", "true frames"] and note == ""
    assert list(out[0].frames) == [0.5]                  # t = 0 and t = 1 are the moving and warped panels
    np.testing.assert_allclose(out[0].frames[0.5], spatial.warp_numpy(_blob(0), half, mode="linear"), atol=1e-6)
    np.testing.assert_allclose(out[1].frames[0.5], _blob(2), atol=1e-6)
    # a missing reference frame is said, not fatal
    out, note = trajectory_rows(rows, regs, {"references": ["f09"], "times": [0.9]}, images)
    assert [r.method for r in out] == ["ours"] and "s1_f09.nii.gz: not found" in note
    assert trajectory_figure(out, "t").startswith(b"\x89PNG")
    assert generated_figure([("ours", _blob(0), _blob(4), _blob(3), _blob(4))], "g").startswith(b"\x89PNG")


def test_image_index_tells_two_datasets_subjects_of_one_name_apart(tmp_path):
    """Two datasets both hold sub-009_be.nii.gz (the pipeline stages each file in a numbered
    folder): a lookup is ambiguous until scoped to one dataset by the staging manifest."""
    from diffreg.registration_outputs import ImageIndex, read_image_datasets
    for k, value in (("1", 1.0), ("2", 2.0)):
        (tmp_path / "images" / k).mkdir(parents=True)
        write_image(tmp_path / "images" / k / "sub-009_be.nii.gz", np.full((4, 4), value, np.float32), np.eye(4))
    manifest = tmp_path / "images_datasets.tsv"
    manifest.write_text("1\ttoy\n2\toasis\n")
    index = ImageIndex([tmp_path / "images"], read_image_datasets(manifest))
    with pytest.raises(InputError, match="ambiguous"):
        index.find("sub-009_be.nii.gz")
    assert index.only("oasis").find("sub-009_be.nii.gz").parent.name == "2"
    assert index.only("toy").find("sub-009_be.nii.gz").parent.name == "1"
    assert index.only(None) is index
    manifest.write_text("1 toy\n")
    with pytest.raises(InputError, match="expected"):
        read_image_datasets(manifest)


def test_trajectory_columns_merge_equal_times_written_differently():
    """5/6 as k/6 (VM) and as numpy's linspace (ours) differ in the last bits: one column."""
    from diffreg.report.figures.trajectory import TrajectoryRow, columns
    img = np.zeros((4, 4), np.float32)
    vm = TrajectoryRow("vm", img, img, {k / 6: img for k in range(1, 6)})
    ours = TrajectoryRow("ours", img, img, {float(t): img for t in np.linspace(0, 1, 7)[1:-1]})
    assert len({*vm.frames, *ours.frames}) == 6        # the two 5/6 differ in the last bit
    times, frames = columns([vm, ours])
    assert len(times) == 5 and all(len(f) == 5 for f in frames)
