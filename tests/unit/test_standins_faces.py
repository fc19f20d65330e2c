"""The faces stand-in (RaFD for DiffuseMorph): layout, regions over the photographs, the known
warp, landmarks carried by it (also as image features), determinism."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from diffreg.data.samplesheet import load_samplesheet
from diffreg.data.standins import faces as F
from diffreg.io import read_field
from diffreg.spatial import warp_numpy

from .test_standins import _digest, _jac_min, _load, _surface_distance, _toy

ARGS = ["--dataset", "faces", "--n-subjects", 3, "--size", 64, "--n-expressions", 2]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    assert _toy([*ARGS, "--outdir", d, "--seed", 1]) == 0
    return d


def test_layout_and_validation(faces):
    sheet = load_samplesheet(faces / "samplesheet.csv")   # `diffreg validate`'s check, labels.json
    assert json.loads((faces / "labels.json").read_text()) == {str(k): v for k, v in F.LABELS.items()}
    assert list(sheet.columns[:6]) == ["subject", "split", "image_neutral", "image_expression",
                                       "labels_neutral", "labels_expression"]
    assert sheet["subject"].tolist() == ["face001_smile", "face001_surprise", "face002_smile",
                                         "face002_surprise", "face003_smile", "face003_surprise"]
    assert sheet["split"].tolist() == ["train"] * 2 + ["test"] * 4      # a face's expressions share its split
    assert sheet["face"].tolist()[::2] == ["grace_hopper", sheet["face"][2], "astronaut"]
    rgb = _load(faces / "face003_surprise_rgb.nii.gz")
    assert rgb.shape == (64, 64, 1, 3) and np.ptp(rgb[..., 0] - rgb[..., 2]) > 0.1   # real colour
    assert sheet["rgb_neutral"][2] == ""                                   # LFW faces are grey


def test_regions_sit_on_the_features(faces):
    for fid in ("face001", "face002", "face003"):
        img, lab = _load(faces / f"{fid}_neutral.nii.gz"), _load(faces / f"{fid}_neutral_gt.nii.gz")
        assert set(np.unique(lab)) == {0, 1, 2, 3, 4}
        skin = img[lab == 1].mean()
        assert img[lab == 2].mean() < skin - 0.05, fid   # the eye regions hold the dark eyes
        # (brows: dark on Grace Hopper's and most LFW faces, faint on the astronaut's: not tested)


def test_known_displacement_maps_neutral_onto_expression(faces):
    sheet = pd.read_csv(faces / "samplesheet.csv", keep_default_na=False)
    for _, r in sheet.iterrows():
        u, _ = read_field(faces / r["disp"])
        assert u.shape == (2, 64, 64) and _jac_min(u) > 0
        n_lab, e_lab = _load(faces / r["labels_neutral"]), _load(faces / r["labels_expression"])
        warped = warp_numpy(n_lab.astype(np.int16), u, mode="nearest")
        moved = [k for k in (2, 3, 4) if (n_lab == k).sum() != (e_lab == k).sum()]
        assert moved, r["subject"]
        err = np.mean([_surface_distance(warped == k, e_lab == k) for k in (1, 2, 3, 4)])
        assert err < 0.5, (r["subject"], err)
        n_img, e_img = _load(faces / r["image_neutral"]), _load(faces / r["image_expression"])
        before, after = np.abs(n_img - e_img).mean(), np.abs(warp_numpy(n_img, u) - e_img).mean()
        assert after < 0.5 * before, (r["subject"], before, after)


def test_landmarks_are_carried_by_the_warp(faces):
    sheet = pd.read_csv(faces / "samplesheet.csv", keep_default_na=False)
    for _, r in sheet.iterrows():
        u, _ = read_field(faces / r["disp"])
        lm = pd.read_csv(faces / r["landmarks"])
        p = lm[["x_neutral", "y_neutral"]].to_numpy()
        q = lm[["x_expression", "y_expression"]].to_numpy()
        back = q + np.stack([ndimage.map_coordinates(c, q.T, order=1) for c in u], axis=1)
        assert np.abs(back - p).max() < 0.05                  # E(q) = N(q + u(q)) = N(p)
        assert np.linalg.norm(q - p, axis=1).max() > 1.0      # and they do move
        from diffreg.metrics import landmark_mse
        assert landmark_mse(u, q, p) < 1e-3 < landmark_mse(np.zeros_like(u), q, p)


def test_landmarks_match_image_features():
    """A 'photograph' of dark dots at the landmarks, through the stand-in's own renderer: in the
    expression image each dot's centroid sits at the transported landmark."""
    size, src = 64, 200
    # landmarks spread over the face, in source pixels; far enough apart for separate dots
    rc = {"brow_l": (30, 60), "brow_r": (30, 140), "eye_l": (50, 60), "eye_r": (50, 140), "nose": (85, 100),
          "mouth_l": (115, 55), "mouth_r": (115, 145), "lip_top": (103, 100), "lip_bottom": (127, 100),
          "chin": (155, 100)}
    rr, cc = np.mgrid[0:src, 0:src]
    pixels = np.ones((src, src))
    for r0, c0 in rc.values():
        pixels -= 0.8 * np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * 3.0 ** 2))
    face = F.Face("dots", pixels, (0, 0, src), rc, (100, 100, 90, 80))
    frame = F.Frame(face, size)
    lm = frame.landmarks()
    grid = np.stack(np.meshgrid(np.arange(size, dtype=float), np.arange(size, dtype=float), indexing="ij"))
    bumps = F.expression_bumps(lm, "surprise", np.random.default_rng(0), 1.2)
    u = F.backward_displacement(bumps, grid)
    expr = 1.0 - frame.sample(grid + u)
    q = F.flow_points(bumps, np.stack([lm[k] for k in F.LANDMARKS]))
    for k, qk in zip(F.LANDMARKS, q):
        win = (np.abs(grid[0] - qk[0]) < 3) & (np.abs(grid[1] - qk[1]) < 3)
        wts = expr * win
        centroid = np.array([(grid[d] * wts).sum() / wts.sum() for d in range(2)])
        assert np.linalg.norm(centroid - qk) < 0.35, (k, centroid, qk)
    moved = np.linalg.norm(q - np.stack([lm[k] for k in F.LANDMARKS]), axis=1)
    assert moved.max() > 2.0   # brows and jaw moved by voxels, not a trivial check


def test_same_seed_same_bytes(faces, tmp_path):
    assert _toy([*ARGS, "--outdir", tmp_path / "b", "--seed", 1]) == 0
    assert _toy([*ARGS, "--outdir", tmp_path / "c", "--seed", 2]) == 0
    a, b, c = _digest(faces), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert a["face002_smile.nii.gz"] != c["face002_smile.nii.gz"]


def test_bad_options_are_refused(tmp_path, capsys):
    assert _toy(["--dataset", "faces", "--outdir", tmp_path, "--n-expressions", 9]) == 2
    assert "--n-expressions 9" in capsys.readouterr().err
    assert _toy(["--dataset", "faces", "--outdir", tmp_path, "--ndim", 3]) == 2
