"""Evaluate registration outputs into the project's long metrics table.

A registration output directory (``<method>__<pair>``) holds ``disp.nii.gz`` (voxel-unit backward
map on the fixed grid), ``run.json`` (method, pair, image basenames, timings) and, optionally, the
method's own warped images. Evaluation re-warps the moving image and labels with the one
:func:`diffreg.spatial.warp_numpy`, so every method and baseline is scored through the same
interpolation, and scores the field with :mod:`diffreg.metrics`.

Long table columns (docs/conventions.md): experiment, artifact, method, dataset, pair, label, metric, value.
``label`` is a label name (``labels.json`` or ``"label N"``), ``"mean"`` for the nanmean over
foreground labels, ``"all"`` for quantities of the whole field or image, or the name of a label
union (an evaluation config's ``label_unions``, e.g. LV = blood pool + myocardium): the per-label
metrics of the masks "any of these labels", which the mean leaves out. ``dice_structures`` (label
``"mean"``) is the nanmean of the Dice of every single label *and* every union, DiffuseMorph's
ACDC "Dice" (its official code averages LV, Myo, LV+Myo, RV and all foreground).
``dice_official`` / ``dice_structures_official``: the same of labels resampled as DiffuseMorph's
official evaluation does (``metrics_official``); computed only when the config's ``metrics``
names them (an artifact's ``metrics:``), never by default. ``nmse_generated`` / ``ssim_generated``:
a registration's generated image (run.json ``images``, DiffuseMorph's Fig. 7) against the fixed
image; ``*_generated_before`` the moving image it started from.

Images may carry colour: an image of shape (*S, 3) (or (*S, 1, 3) as a 2D NIfTI vector image) is
warped channel by channel and scored on all channels (NMSE/MSE/PSNR over every value, SSIM the
mean over channels), as DiffuseMorph scores its faces in RGB. An evaluation config's
``score_on: rgb`` scores the intensity metrics on each subject's colour version of the registered
modality (``<subject>_<modality>.rgb.nii.gz``, carried from the samplesheet's ``rgb_<modality>``)
instead of the grey image the network registered.

Landmarks (config ``landmarks: true``): ``<subject>_landmarks.csv`` (samplesheet column
``landmarks``) holds per landmark ``name`` and voxel coordinates ``x_<modality>``, ``y_<modality>``
(``z_<modality>``) in array-axis order; ``landmark_mse`` is :func:`metrics.landmark_mse` of the
field between the landmarks both subjects have, ``landmark_mse_before`` that of the identity, and
``landmark_mse_continuous`` that of each trajectory field (label ``t=<time>``) and their mean.
"""
from __future__ import annotations

import sys
from functools import partial
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from diffreg import metrics, metrics_official, spatial, trajectory_metrics
from diffreg.errors import InputError
from diffreg.evaluation_config import (FIELD_KEYS, FIELD_METRICS, GENERATED_METRICS, IMAGE_BEFORE_METRICS,
                                       IMAGE_METRICS, LABEL_METRICS, LANDMARK_METRICS, MEAN, OFFICIAL_LABEL_METRICS,
                                       TRAJECTORY_METRICS, WHOLE, label_name)
from diffreg.io import read_field, read_image
from diffreg.metrics_table import COLUMNS
from diffreg.registration_outputs import (ImageIndex, PairData, Registration, fixed_subject, landmark_points,
                                          load_pair, on_version)

SSIM_WINDOW = {2: 11, 3: 9}   # Gaussian SSIM window (classic 2D; DiffuseReg's 3D setting)
# an image a registration generated (run.json `images`: DiffuseMorph's Fig. 7) against the fixed
# image, and (`_before`, the tables' initial row) the moving image it was generated from
GENERATED_IMAGE = "generated"
TIME_TOLERANCE = 1e-6


def foreground_labels(data: PairData, names: dict[int, str]) -> list[int]:
    """Labels scored: every nonzero id of labels.json, else every nonzero id in either map."""
    if names:
        return sorted(k for k in names if k != 0)
    present = np.union1d(np.unique(data.fixed_labels), np.unique(data.moving_labels))
    return sorted(int(v) for v in present if v != 0)


def _nanmean(values: Iterable[float]) -> float:
    vals = np.asarray(list(values), dtype=float)
    return float("nan") if vals.size == 0 or np.all(np.isnan(vals)) else float(np.nanmean(vals))


def _per_label_rows(metric: str, per_label: dict[int, float], names: dict[int, str]) -> list[tuple[str, str, float]]:
    rows = [(label_name(k, names), metric, float(v)) for k, v in per_label.items()]
    rows.append((MEAN, metric, _nanmean(per_label.values())))
    return rows


def _union_rows(metric: str, score, a: np.ndarray, b: np.ndarray,
                unions: dict[str, list[int]]) -> list[tuple[str, str, float]]:
    """`score` (a per-label metric) of the masks 'any label of the union', as label 1 of both maps."""
    return [(name, metric, float(score(np.isin(a, values).astype(np.int8),
                                       np.isin(b, values).astype(np.int8), [1])[1]))
            for name, values in unions.items()]


def _label_rows(data: PairData, names: dict[int, str], labels: list[int], unions: dict[str, list[int]],
                want) -> list[tuple[str, str, float]]:
    """Rows of the wanted LABEL_METRICS: per label, their mean, per union."""
    warped_labels = data.warped_labels()
    unit = data.spacing is None or np.allclose(data.spacing, 1.0)
    hd_mm = metrics.hd95_per_label if unit else partial(metrics.hd95_per_label, spacing=data.spacing)
    rows: list[tuple[str, str, float]] = []
    done: dict[str, list] = {}
    # dice_structures(_before) needs the Dice rows: computed, written only when dice(_before) is wanted too
    for metric, score, moved in (("dice", metrics.dice_per_label, warped_labels),
                                 ("dice_before", metrics.dice_per_label, data.moving_labels),
                                 ("hd95_vox", metrics.hd95_per_label, warped_labels),
                                 ("hd95_mm", hd_mm, warped_labels)):
        if not (want(metric) or (metric in ("dice", "dice_before") and want(f"dice_structures{metric[4:]}"))):
            continue
        if metric == "hd95_mm" and unit and "hd95_vox" in done:   # unit voxels: the same numbers
            rows += [(lab, metric, val) for lab, _, val in done["hd95_vox"]]
            continue
        done[metric] = (_per_label_rows(metric, score(moved, data.fixed_labels, labels), names)
                        + _union_rows(metric, score, moved, data.fixed_labels, unions))
        if want(metric):
            rows += done[metric]
    for metric in ("dice", "dice_before"):   # the initial row's Overall (DiffuseReg Table 1) from dice_before
        if want(f"dice_structures{metric[4:]}"):
            rows.append((MEAN, f"dice_structures{metric[4:]}", _nanmean(v for lab, _, v in done[metric] if lab != MEAN)))
    return rows


def score_pair(data: PairData, names: dict[int, str], unions: dict[str, list[int]] | None = None,
               wanted: Sequence[str] | None = None) -> list[tuple[str, str, float]]:
    """Metrics of one registered pair as (label, metric, value) rows; `wanted` restricts them to
    those names (None: all), and a metric not wanted is not computed.

    Dice and HD95 per label (HD95 NaN where a label is missing from either map), with their nanmean
    over foreground labels, and per label union; Jacobian statistics of the whole field (central
    differences, DiffuseReg's forward-difference NJD/JSD, the strict digital-diffeomorphism
    criterion); similarity of the warped moving image to the fixed one.
    """
    def want(metric: str) -> bool:
        return wanted is None or metric in wanted

    unions = unions or {}
    labels = foreground_labels(data, names)
    clash = sorted(set(unions) & {label_name(k, names) for k in labels})
    if clash:
        raise InputError(f"label union name(s) {', '.join(clash)} are also names of single labels")
    rows: list[tuple[str, str, float]] = []
    if any(want(m) for m in LABEL_METRICS):
        rows += _label_rows(data, names, labels, unions, want)
    if wanted is not None and any(m in wanted for m in OFFICIAL_LABEL_METRICS):
        rows += _official_label_rows(data, names, labels, unions, wanted)
    if any(want(m) for m in FIELD_METRICS):
        jac = metrics.summary_jacobian(data.disp)   # every Jacobian statistic in one pass
        rows += [(WHOLE, m, jac[k]) for m, k in zip(FIELD_METRICS, FIELD_KEYS) if want(m)]
    if any(want(m) for m in IMAGE_METRICS):
        rows += _image_rows(data.warped(), data, "", want)
    if any(want(m) for m in IMAGE_BEFORE_METRICS):
        rows += _image_rows(data.moving, data, "_before", want)
    return [(lab, met, float(val)) for lab, met, val in rows]


def _official_label_rows(data: PairData, names: dict[int, str], labels: list[int], unions: dict[str, list[int]],
                         wanted: Sequence[str]) -> list[tuple[str, str, float]]:
    """DiffuseMorph's official Dice (metrics_official): per label, mean, unions, and their mean."""
    moved = metrics_official.warp_labels_diffusemorph(data.moving_labels, data.disp)
    dice = (_per_label_rows("dice_official", metrics.dice_per_label(moved, data.fixed_labels, labels), names)
            + _union_rows("dice_official", metrics.dice_per_label, moved, data.fixed_labels, unions))
    rows = dice if "dice_official" in wanted else []
    if "dice_structures_official" in wanted:
        rows = rows + [(MEAN, "dice_structures_official", _nanmean(v for lab, _, v in dice if lab != MEAN))]
    return rows


def _image_rows(moved: np.ndarray, data: PairData, suffix: str, want) -> list[tuple[str, str, float]]:
    """MSE, PSNR, NMSE and SSIM of `moved` against the fixed image, named `<metric><suffix>`."""
    fixed = data.fixed.astype(np.float64)
    shape = data.disp.shape[1:]
    channel = None if fixed.shape == shape else 0      # colour: (C, *S)
    image = {"mse": lambda: float(np.mean((moved.astype(np.float64) - fixed) ** 2)),
             "psnr": lambda: metrics.psnr(moved, fixed), "nmse": lambda: metrics.nmse(moved, fixed)}
    # SSIM needs one whole window inside the image
    if min(shape) >= SSIM_WINDOW[len(shape)]:
        image["ssim"] = lambda: metrics.ssim(moved, fixed, win_size=SSIM_WINDOW[len(shape)], channel_axis=channel)
    return [(WHOLE, m + suffix, fn()) for m, fn in image.items() if want(m + suffix)]


def score_landmarks(reg: Registration, data: PairData, images: ImageIndex, want) -> list[tuple[str, str, float]]:
    """Landmark MSE (voxels^2) of the field, of the identity (before registration) and of each
    trajectory field (Fig. 6: every intermediate deformation against the target's landmarks) with
    their mean; NaN throughout when the subjects lack landmarks."""
    nan = float("nan")
    points = landmark_points(reg, images, data.disp.shape[0])
    steps = [float(t) for t in (reg.run.get("trajectory_times") or [])]

    def score(disp: np.ndarray) -> float:
        return nan if points is None else metrics.landmark_mse(disp, *points)

    rows: list[tuple[str, str, float]] = []
    if want("landmark_mse"):
        rows.append((WHOLE, "landmark_mse", score(data.disp)))
    if want("landmark_mse_before"):
        rows.append((WHOLE, "landmark_mse_before", score(np.zeros_like(data.disp))))
    if want("landmark_mse_continuous") and steps:
        along = [(f"t={t:g}", "landmark_mse_continuous",
                  score(read_field(reg.path / f"disp_step{k}.nii.gz")[0]) if points is not None else nan)
                 for k, t in enumerate(steps)]
        rows += along + [(MEAN, "landmark_mse_continuous", _nanmean(v for _, _, v in along))]
    return rows


def score_trajectory(reg: Registration, data: PairData, images: ImageIndex, traj: dict,
                     want) -> list[tuple[str, str, float]]:
    """PSNR and NMSE of the moving image warped by the trajectory field at each reference time
    against the fixed subject's frame at that time (label "t=<time>"), and their mean. A time the
    registration has no field for scores NaN (e.g. VM-diff's squaring stages are at 2^-v only), and
    so does a frame the fixed subject lacks (an ACDC patient whose cine could not be read)."""
    times = [float(t) for t in (reg.run.get("trajectory_times") or [])]
    subject = fixed_subject(reg)
    rows: list[tuple[str, str, float]] = []
    for ref, t in zip(traj["references"], traj["times"]):
        k = next((i for i, ti in enumerate(times) if abs(ti - t) <= TIME_TOLERANCE), None)
        values = {"psnr_continuous": float("nan"), "nmse_continuous": float("nan")}
        if k is not None and not images.has(f"{subject}_{ref}.nii.gz"):
            print(f"diffreg evaluate: {subject} has no frame {ref}: its t={t:g} scores NaN", file=sys.stderr)
        elif k is not None:
            disp, _ = read_field(reg.path / f"disp_step{k}.nii.gz")
            frame, _ = read_image(images.find(f"{subject}_{ref}.nii.gz"))
            if frame.shape != data.fixed.shape:
                raise InputError(f"{subject}_{ref}.nii.gz: shape {frame.shape}, fixed image {data.fixed.shape}")
            warped = spatial.warp_numpy(data.moving, disp, mode="linear")
            values = {"psnr_continuous": metrics.psnr(warped, frame), "nmse_continuous": metrics.nmse(warped, frame)}
        rows += [(f"t={t:g}", m, v) for m, v in values.items() if want(m)]
    for m in TRAJECTORY_METRICS:
        if want(m):
            rows.append((MEAN, m, _nanmean(v for lab, met, v in rows if met == m)))
    return rows


def score_generated(reg: Registration, data: PairData, want) -> list[tuple[str, str, float]]:
    """NMSE / SSIM of the registration's generated image (on the registered modality's grid) to
    the fixed image, and of the moving image it started from (`_before`)."""
    path = reg.path / f"{GENERATED_IMAGE}.nii.gz"
    if not path.is_file():
        raise InputError(f"{reg.path}: run.json lists a generated image but {path.name} is missing")
    generated = read_image(path)[0]
    if generated.shape != data.fixed.shape:
        raise InputError(f"{path}: shape {generated.shape} differs from the fixed image {data.fixed.shape}")
    return (_image_rows(generated, data, "_generated", want)
            + _image_rows(data.moving, data, "_generated_before", want))


def evaluate_registration(reg: Registration, images: ImageIndex, names: dict[int, str],
                          experiment: str, artifact: str, dataset: str | None,
                          unions: dict[str, list[int]] | None = None,
                          wanted: Sequence[str] | None = None, trajectory: dict | None = None,
                          landmarks: bool = False, score_on: str | None = None) -> pd.DataFrame:
    """Long metrics table of one registration directory (see :func:`score_pair`, with the images
    of `score_on` (:func:`on_version`); :func:`score_trajectory` when the evaluation config names
    the frames of a trajectory; :func:`score_landmarks` when it asks for landmarks)."""
    def want(metric: str) -> bool:
        return wanted is None or metric in wanted

    data = load_pair(reg, images)
    scored = on_version(reg, data, images, score_on) if any(want(m) for m in IMAGE_METRICS) else data
    rows = score_pair(scored, names, unions, wanted)
    # the trajectory's reference frames are the registered (grey) modality's
    if trajectory and any(want(m) for m in TRAJECTORY_METRICS):
        rows += score_trajectory(reg, data, images, trajectory, want)
    if landmarks and any(want(m) for m in LANDMARK_METRICS):
        rows += score_landmarks(reg, data, images, want)
    rows += trajectory_metrics.score_saved_trajectory(reg.path, reg.run, want)   # Fig. 3 of DiffuseReg
    if GENERATED_IMAGE in (reg.run.get("images") or []) and any(want(m) for m in GENERATED_METRICS):
        rows += score_generated(reg, data, lambda m: m in GENERATED_METRICS and want(m))
    runtime = reg.registration_time()
    if runtime is not None and (wanted is None or "runtime_s" in wanted):
        rows.append((WHOLE, "runtime_s", float(runtime)))
    if reg.run.get("threads") is not None and (wanted is None or "threads" in wanted):
        rows.append((WHOLE, "threads", float(reg.run["threads"])))
    ds = dataset or reg.run.get("dataset") or "unknown"
    return pd.DataFrame(
        [(experiment, artifact, reg.method, ds, reg.pair, lab, met, val) for lab, met, val in rows],
        columns=COLUMNS,
    )
