"""Metrics DiffuseMorph's tables need, against values worked out by hand: the mean Dice over
labels and label unions (its ACDC "Dice"), RGB images scored channel by channel (its faces) and
the landmark MSE (its Fig. 6)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diffreg import metrics
from diffreg.cli import main
from diffreg.metrics_table import read_metrics
from diffreg.io import write_field, write_image

SHAPE = (16, 12)


def registration(root: Path, moving, fixed, moving_labels, fixed_labels, disp) -> Path:
    images = root / "images"
    names = {"moving": "m.nii.gz", "fixed": "f.nii.gz", "moving_labels": "ml.nii.gz", "fixed_labels": "fl.nii.gz"}
    for key, arr in (("moving", moving), ("fixed", fixed), ("moving_labels", moving_labels),
                     ("fixed_labels", fixed_labels)):
        write_image(images / names[key], arr)
    reg = root / "r"
    reg.mkdir(parents=True)
    write_field(reg / "disp.nii.gz", disp)
    (reg / "run.json").write_text(json.dumps({"method": "m", "pair": "p", **names}))
    return reg


def evaluate(root: Path, config: dict):
    (root / "eval.json").write_text(json.dumps(config))
    out = root / "metrics.csv"
    assert main(["evaluate", "--registration", str(root / "r"), "--images-dir", str(root / "images"),
                 "--config", str(root / "eval.json"), "--out", str(out)]) == 0
    return read_metrics(out)


def value(df, metric, label="all") -> float:
    sel = df[(df["metric"] == metric) & (df["label"] == label)]
    assert len(sel) == 1, (metric, label, len(sel))
    return float(sel["value"].iloc[0])


def cardiac_labels(shift: int = 0) -> np.ndarray:
    """1 RV (4x4), 2 myocardium (a 6x6 ring around) and 3 LV cavity (2x2 inside it); the left
    ventricle (2 and 3) is moved by `shift` rows."""
    lab = np.zeros(SHAPE, np.int16)
    lab[1:5, 1:5] = 1
    lab[6 + shift:12 + shift, 4:10] = 2
    lab[8 + shift:10 + shift, 6:8] = 3
    return lab


def test_dice_structures_averages_labels_and_unions(tmp_path):
    img = np.full(SHAPE, 0.5, np.float32)
    reg = registration(tmp_path, img, img, cardiac_labels(1), cardiac_labels(0), np.zeros((2, *SHAPE), np.float32))
    df = evaluate(tmp_path, {"label_unions": {"LV+Myo": [2, 3], "foreground": [1, 2, 3]},
                             "metrics": ["dice", "dice_structures"]})
    # identity map: the moving labels as they are. RV: 1. Myocardium: 32 voxels each; the 6x6
    # blocks share 30, less the 6 voxels in either cavity: 24. LV cavity (4 voxels, moved one row): 2/4
    fl, ml = cardiac_labels(0), cardiac_labels(1)
    dice = lambda a, b: 2 * np.sum(a & b) / (np.sum(a) + np.sum(b))
    expect = {"label 1": 1.0, "label 2": dice(ml == 2, fl == 2), "label 3": 0.5,
              "LV+Myo": dice(ml >= 2, fl >= 2), "foreground": dice(ml > 0, fl > 0)}
    assert expect["label 2"] == pytest.approx(2 * 24 / 64)
    assert expect["LV+Myo"] == pytest.approx(2 * 30 / 72)         # 6x6 blocks moved one row
    assert expect["foreground"] == pytest.approx(2 * 46 / 104)
    for label, v in expect.items():
        assert value(df, "dice", label) == pytest.approx(v)
    assert value(df, "dice", "mean") == pytest.approx(np.mean([expect[k] for k in ("label 1", "label 2", "label 3")]))
    assert value(df, "dice_structures", "mean") == pytest.approx(np.mean(list(expect.values())))
    # asked alone, it is written alone
    df = evaluate(tmp_path, {"label_unions": {"LV+Myo": [2, 3]}, "metrics": ["dice_structures"]})
    assert set(df["metric"]) == {"dice_structures"}
    assert value(df, "dice_structures", "mean") == pytest.approx(
        np.mean([1.0, expect["label 2"], 0.5, expect["LV+Myo"]]))
    # before registration: the moving labels as given, whatever the field (the initial row's Overall)
    shifted = tmp_path / "shifted"
    disp = np.zeros((2, *SHAPE), np.float32)
    disp[0] = 1.0
    registration(shifted, img, img, cardiac_labels(1), cardiac_labels(0), disp)
    df = evaluate(shifted, {"label_unions": {"LV+Myo": [2, 3]}, "metrics": ["dice_structures", "dice_structures_before"]})
    assert set(df["metric"]) == {"dice_structures", "dice_structures_before"}
    assert value(df, "dice_structures_before", "mean") == pytest.approx(
        np.mean([1.0, expect["label 2"], 0.5, expect["LV+Myo"]]))
    assert value(df, "dice_structures", "mean") != pytest.approx(value(df, "dice_structures_before", "mean"))


def rgb(shift: int = 0) -> np.ndarray:
    """(X, Y, 3): three different smooth channels, moved by `shift` along axis 0."""
    x = (np.arange(SHAPE[0]) - shift)[:, None] / SHAPE[0]
    y = np.arange(SHAPE[1])[None, :] / SHAPE[1]
    chans = [0.5 + 0.3 * np.sin(2 * np.pi * x) * np.cos(np.pi * y), 0.2 + 0.5 * x * y + 0 * y,
             0.6 - 0.2 * np.cos(2 * np.pi * (x + y))]
    return np.stack([np.broadcast_to(c, SHAPE) for c in chans], -1).astype(np.float32)


@pytest.mark.parametrize("vector_image", [False, True])
def test_rgb_images_are_warped_and_scored_by_channel(tmp_path, vector_image):
    lab = cardiac_labels()
    # a 2D NIfTI vector image stores (X, Y, 1, 3)
    moving, fixed = (a[:, :, None, :] if vector_image else a for a in (rgb(2), rgb(0)))
    disp = np.zeros((2, *SHAPE), np.float32)
    disp[0] = 2.0            # warped(x) = moving(x + 2) = fixed(x) away from the border
    registration(tmp_path, moving, fixed, lab, lab, disp)
    df = evaluate(tmp_path, {"metrics": ["nmse", "ssim", "mse"]})
    # the exact answer: the border rows replicate (warp pads with the border value)
    warped = np.stack([rgb(2)[np.clip(np.arange(SHAPE[0]) + 2, None, SHAPE[0] - 1), :, c] for c in range(3)])
    ref = np.moveaxis(rgb(0), -1, 0).astype(np.float64)
    assert value(df, "nmse") == pytest.approx(np.sum((warped - ref) ** 2) / np.sum(ref ** 2), rel=1e-5)
    assert value(df, "mse") == pytest.approx(np.mean((warped - ref) ** 2), rel=1e-5)
    assert value(df, "ssim") == pytest.approx(np.mean([metrics.ssim(w, r, win_size=11) for w, r in zip(warped, ref)]),
                                              rel=1e-5)
    assert np.sum((warped - ref)[:, :-2] ** 2) == pytest.approx(0, abs=1e-9)   # only the border rows differ


def test_identity_on_rgb_is_perfect_and_a_volume_is_no_colour_image(tmp_path, capsys):
    lab = cardiac_labels()
    registration(tmp_path, rgb(), rgb(), lab, lab, np.zeros((2, *SHAPE), np.float32))
    df = evaluate(tmp_path, {"metrics": ["nmse", "ssim"]})
    assert value(df, "nmse") == pytest.approx(0.0, abs=1e-12)
    assert value(df, "ssim") == pytest.approx(1.0)
    # a 4-slice volume against a 2D field stays a shape error
    write_image(tmp_path / "images" / "m.nii.gz", np.zeros((*SHAPE, 4), np.float32))
    assert main(["evaluate", "--registration", str(tmp_path / "r"), "--images-dir", str(tmp_path / "images"),
                 "--out", str(tmp_path / "x.csv")]) != 0
    assert "does not match displacement" in capsys.readouterr().err


def test_ssim_channel_axis_is_the_mean_over_channels():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, *SHAPE)), rng.random((3, *SHAPE))
    per = [metrics.ssim(x, y, win_size=7) for x, y in zip(a, b)]
    assert metrics.ssim(a, b, win_size=7, channel_axis=0) == pytest.approx(np.mean(per))
    assert metrics.ssim(np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1), win_size=7, channel_axis=-1) == \
        pytest.approx(np.mean(per))


def test_landmark_mse_of_a_known_shift():
    disp = np.zeros((2, *SHAPE))
    disp[0], disp[1] = 1.0, -2.0                     # x -> x + (1, -2)
    p = np.array([[3.0, 4.0], [8.5, 6.25], [10.0, 9.0]])
    assert metrics.landmark_mse(disp, p, p + [1.0, -2.0]) == pytest.approx(0.0)
    assert metrics.landmark_mse(disp, p, p) == pytest.approx(5.0)            # 1^2 + 2^2 for each point
    q = p + [1.0, -2.0]
    q[0] += [3.0, 4.0]                                                        # one landmark 5 voxels off
    assert metrics.landmark_mse(disp, p, q) == pytest.approx(25.0 / 3)
    # linear in between two voxels of a varying field
    disp[0] = np.arange(SHAPE[0])[:, None] * 0.5
    disp[1] = 0.0
    assert metrics.landmark_mse(disp, [[2.5, 3.0]], [[2.5, 3.0]]) == pytest.approx(1.25 ** 2)
    with pytest.raises(ValueError):
        metrics.landmark_mse(disp, p, p[:2])


def test_scored_labels_restrict_the_labels_and_their_mean(tmp_path):
    """LDM-Morph's ACDC Dice averages myocardium (2) and LV (3) only: scored_labels [2, 3]."""
    img = np.full(SHAPE, 0.5, np.float32)
    registration(tmp_path, img, img, cardiac_labels(1), cardiac_labels(0), np.zeros((2, *SHAPE), np.float32))
    df = evaluate(tmp_path, {"scored_labels": [3, 2], "metrics": ["dice", "dice_before"]})
    fl, ml = cardiac_labels(0), cardiac_labels(1)
    myo = 2 * np.sum((ml == 2) & (fl == 2)) / (np.sum(ml == 2) + np.sum(fl == 2))
    assert set(df.loc[df["metric"] == "dice", "label"]) == {"label 2", "label 3", "mean"}
    assert value(df, "dice", "mean") == pytest.approx((myo + 0.5) / 2)
    assert value(df, "dice_before", "mean") == pytest.approx((myo + 0.5) / 2)
    for bad in ([0], [2, 2], "2", []):
        (tmp_path / "eval.json").write_text(json.dumps({"scored_labels": bad}))
        assert main(["evaluate", "--registration", str(tmp_path / "r"), "--images-dir", str(tmp_path / "images"),
                     "--config", str(tmp_path / "eval.json"), "--out", str(tmp_path / "x.csv")]) != 0
    assert not (tmp_path / "x.csv").exists()


def test_official_label_warp_of_a_zero_field_drops_the_last_slice_of_even_axes():
    """DiffuseMorph's official resampling (align_corners=True grid read with align_corners=False)
    samples voxel i at i n / (n - 1) - 1/2, which rounds to i except at i = n - 1, where it is
    n - 1/2: rounded to even, outside the volume when n is even (zeros). So a zero field keeps
    every voxel but the last slice of each even axis: here axes 6 and 4, 1 - 5/6 * 3/4 of them."""
    from diffreg import spatial
    from diffreg.metrics_official import warp_labels_diffusemorph
    labels = np.random.default_rng(0).integers(1, 4, (6, 5, 4)).astype(np.int16)
    zero = np.zeros((3, 6, 5, 4))
    moved = warp_labels_diffusemorph(labels, zero)
    dropped = np.zeros(labels.shape, bool)
    dropped[5], dropped[:, :, 3] = True, True
    assert (moved[dropped] == 0).all() and (moved[~dropped] == labels[~dropped]).all()
    assert np.mean(moved != labels) == pytest.approx(1 - 5 / 6 * 3 / 4)
    assert (spatial.warp_numpy(labels, zero, mode="nearest") == labels).all()    # ours: the identity
    # a whole-voxel shift inside the volume moves the labels as ours does, the last slice aside
    shift = np.zeros((3, 6, 5, 4))
    shift[1] = 1.0
    ours = spatial.warp_numpy(labels, shift, mode="nearest")
    keep = ~dropped
    keep[:, 4] = False                        # ours repeats the border there, the official code reads zeros
    assert (warp_labels_diffusemorph(labels, shift)[keep] == ours[keep]).all()


def test_official_dice_is_named_only_and_scores_the_official_warp(tmp_path):
    """A label reaching the last slice of an even axis loses it under a zero field: official Dice
    2 * 3 / (3 + 4) for a block of 4 slices that keeps 3; ours is 1. Not computed unless named."""
    shape = (8, 8, 8)
    lab = np.zeros(shape, np.int16)
    lab[2:6, 2:6, 4:8] = 1        # reaches z = 7
    lab[2:6, 2:6, 0:4] = 2
    img = np.full(shape, 0.5, np.float32)
    registration(tmp_path, img, img, lab, lab, np.zeros((3, *shape), np.float32))
    unions = {"both": [1, 2]}
    df = evaluate(tmp_path, {"label_unions": unions,
                             "metrics": ["dice", "dice_official", "dice_structures", "dice_structures_official"]})
    assert value(df, "dice", "label 1") == 1.0 and value(df, "dice_structures", "mean") == 1.0
    assert value(df, "dice_official", "label 1") == pytest.approx(6 / 7)
    assert value(df, "dice_official", "label 2") == 1.0
    assert value(df, "dice_official", "both") == pytest.approx(2 * 112 / (112 + 128))
    assert value(df, "dice_structures_official", "mean") == pytest.approx(np.mean([6 / 7, 1.0, 224 / 240]))
    every = evaluate(tmp_path, {"label_unions": unions})                         # metrics: every (ours)
    assert not set(every["metric"]) & {"dice_official", "dice_structures_official"}


def test_a_generated_image_is_scored_against_the_fixed_image(tmp_path, capsys):
    """Fig. 7: the generated image's NMSE / SSIM to the fixed image, beside the moving image's
    (`_before`): a generated image equal to the fixed one scores NMSE 0 and SSIM 1."""
    mov, fix = rgb(0)[..., 0], rgb(3)[..., 0]
    reg = registration(tmp_path, mov, fix, cardiac_labels(), cardiac_labels(), np.zeros((2, *SHAPE), np.float32))
    every = evaluate(tmp_path, {})
    assert not any(m.endswith(("_generated", "_generated_before")) for m in set(every["metric"]))  # none written
    write_image(reg / "generated.nii.gz", fix)
    run = json.loads((reg / "run.json").read_text())
    (reg / "run.json").write_text(json.dumps({**run, "images": ["generated"]}))
    df = evaluate(tmp_path, {})
    assert value(df, "nmse_generated") == 0 and value(df, "ssim_generated") == pytest.approx(1.0)
    assert value(df, "nmse_generated_before") == pytest.approx(metrics.nmse(mov, fix))
    assert metrics.nmse(mov, fix) > 0.01
    assert value(df, "ssim_generated_before") == pytest.approx(value(df, "ssim_before"))
    assert value(df, "ssim_before") < 0.99
    (reg / "generated.nii.gz").unlink()
    capsys.readouterr()
    assert main(["evaluate", "--registration", str(reg), "--images-dir", str(tmp_path / "images"),
                 "--config", str(tmp_path / "eval.json"), "--out", str(tmp_path / "m.csv")]) == 2
    assert "generated.nii.gz is missing" in capsys.readouterr().err
