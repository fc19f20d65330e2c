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

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Iterable, Sequence

import nibabel as nib
import numpy as np
import pandas as pd

from diffreg import metrics, metrics_official, spatial, trajectory_metrics
from diffreg.errors import InputError
from diffreg.io import load_json_object, read_field, read_image, read_labels

COLUMNS = ["experiment", "artifact", "method", "dataset", "pair", "label", "metric", "value"]
WHOLE = "all"    # label of whole-field / whole-image metrics
MEAN = "mean"    # label of the nanmean over foreground labels
RUN_KEYS = ("method", "pair", "moving", "fixed", "moving_labels", "fixed_labels")
FIELD_FILE = "disp.nii.gz"
SSIM_WINDOW = {2: 11, 3: 9}   # Gaussian SSIM window (classic 2D; DiffuseReg's 3D setting)
RUNTIME_KEYS = ("register_time_s",)  # written by every method and baseline

# every metric name, by what it scores
LABEL_METRICS = ("dice", "dice_before", "hd95_vox", "hd95_mm",     # per label, per union, and their mean
                 "dice_structures", "dice_structures_before")      # mean Dice over labels and unions
FIELD_METRICS = ("pct_jac_nonpos", "sdlogj", "njd", "jsd", "pct_nondiff", "ndv_pct")
FIELD_KEYS = ("folding_percent", "sdlogj", "njd", "jsd", "strict_percent", "ndv_percent")  # in summary_jacobian
IMAGE_METRICS = ("mse", "psnr", "nmse", "ssim")
# the same of the moving image as given (the tables' "initial" row, as the papers print one)
IMAGE_BEFORE_METRICS = tuple(f"{m}_before" for m in IMAGE_METRICS)
# the moving image warped by each trajectory field against the true frame at that time
TRAJECTORY_METRICS = ("psnr_continuous", "nmse_continuous")
# squared landmark distance (voxels^2) of the field, of the identity, along the trajectory (Fig. 6)
LANDMARK_METRICS = ("landmark_mse", "landmark_mse_before", "landmark_mse_continuous")
RUN_METRICS = ("runtime_s", "threads")                              # from run.json
# a paper's official computation beside ours (metrics_official): only where an artifact names them
OFFICIAL_LABEL_METRICS = metrics_official.DIFFUSEMORPH_DICE
# an image a registration generated (run.json `images`: DiffuseMorph's Fig. 7) against the fixed
# image, and (`_before`, the tables' initial row) the moving image it was generated from
GENERATED_IMAGE = "generated"
GENERATED_METRICS = ("nmse_generated", "ssim_generated", "nmse_generated_before", "ssim_generated_before")
METRIC_NAMES = (LABEL_METRICS + FIELD_METRICS + IMAGE_METRICS + IMAGE_BEFORE_METRICS + TRAJECTORY_METRICS
                + LANDMARK_METRICS + RUN_METRICS + OFFICIAL_LABEL_METRICS + GENERATED_METRICS
                + trajectory_metrics.METRICS)
SCORE_ON = ("rgb",)   # versions of an image the intensity metrics can be scored on (config score_on)
LANDMARK_AXES = ("x", "y", "z")   # landmark CSV coordinate prefixes, in array-axis order


# ----------------------------------------------------------------------------- inputs

def load_label_names(path: str | os.PathLike | None) -> dict[int, str]:
    """``labels.json`` ({"0": "background", "1": "CSF", ...}) -> {int: name}; {} when not given."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        raw = json.loads(path.read_text())
        names = {int(k): str(v) for k, v in raw.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise InputError(f"{path}: not a JSON object of label id -> name ({exc})") from None
    if len(set(names.values())) != len(names):
        raise InputError(f"{path}: label names are not unique")
    return names


def label_name(label: int, names: dict[int, str]) -> str:
    return names.get(int(label), f"label {int(label)}")


@dataclass
class EvalConfig:
    """What an experiment asks of an evaluation (``diffreg evaluate --config``)."""
    experiment: str | None = None
    dataset: str | None = None
    label_unions: dict[str, list[int]] = field(default_factory=dict)   # name -> label values
    metrics: list[str] | None = None                                   # None: every metric
    trajectory: dict | None = None      # {references: [modality, ...], times: [t, ...]} (check_trajectory)
    landmarks: bool = False             # score the subjects' landmark files (landmark_mse*)
    score_on: str | None = None         # intensity metrics on this version of the images (SCORE_ON)
    scored_labels: list[int] | None = None   # the single labels scored (and averaged); None: every one

    KEYS = ("experiment", "dataset", "label_unions", "metrics", "trajectory", "landmarks", "score_on",
            "scored_labels")

    @classmethod
    def from_dict(cls, raw: dict, where: str = "evaluation config") -> "EvalConfig":
        unknown = sorted(set(raw) - set(cls.KEYS))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(cls.KEYS)})")
        for key in ("experiment", "dataset"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise InputError(f"{where}: {key} must be a string")
        traj = raw.get("trajectory")
        return cls(raw.get("experiment"), raw.get("dataset"),
                   check_unions(raw.get("label_unions") or {}, where), check_metrics(raw.get("metrics"), where),
                   check_trajectory(traj, where) if traj is not None else None,
                   check_landmarks(raw.get("landmarks", False), where), check_score_on(raw.get("score_on"), where),
                   check_scored_labels(raw.get("scored_labels"), where))

    def label_names(self, names: dict[int, str]) -> dict[int, str]:
        """The label map's names restricted to `scored_labels` (a paper's Dice over some labels:
        LDM-Morph's LV endocardium on CAMUS), so that the per-label rows and their mean are those."""
        if not self.scored_labels:
            return names
        return {k: label_name(k, names) for k in self.scored_labels}


def load_eval_config(path: str | os.PathLike | None) -> EvalConfig:
    if path is None:
        return EvalConfig()
    return EvalConfig.from_dict(load_json_object(path, "evaluation config"), str(path))


def check_scored_labels(raw, where: str = "scored_labels") -> list[int] | None:
    """None or a non-empty list of distinct nonzero label values."""
    if raw is None:
        return None
    ok = isinstance(raw, list) and raw and all(isinstance(v, int) and not isinstance(v, bool) and v != 0 for v in raw)
    if not ok or len(set(raw)) != len(raw):
        raise InputError(f"{where}: scored_labels must be a list of distinct nonzero label values, got {raw!r}")
    return sorted(raw)


def check_unions(unions, where: str = "label_unions") -> dict[str, list[int]]:
    """{name: [nonzero label values]}; names must not be the reserved 'mean' and 'all'."""
    if not isinstance(unions, dict):
        raise InputError(f"{where}: label_unions must map a name to a list of label values")
    out = {}
    for name, values in unions.items():
        if name in (MEAN, WHOLE) or not str(name).strip():
            raise InputError(f"{where}: label union name '{name}' is reserved or empty")
        ok = isinstance(values, list) and values and all(
            isinstance(v, int) and not isinstance(v, bool) and v != 0 for v in values)
        if not ok:
            raise InputError(f"{where}: label union {name}: expected a list of nonzero label values, got {values!r}")
        out[str(name)] = sorted(set(values))
    return out


def check_trajectory(raw, where: str = "trajectory") -> dict:
    """{references: [modality, ...], times: [t in (0, 1), ...]} of equal lengths: the frames of
    the fixed subject between moving (t = 0) and fixed (t = 1), e.g. ACDC's cine frames."""
    if not isinstance(raw, dict) or set(raw) != {"references", "times"}:
        raise InputError(f"{where}: trajectory must have exactly the keys references and times")
    refs, times = raw["references"], raw["times"]
    if not (isinstance(refs, list) and refs and all(isinstance(r, str) and r for r in refs)):
        raise InputError(f"{where}: trajectory references must be a list of modality names")
    if not (isinstance(times, list) and len(times) == len(refs)
            and all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1 for t in times)):
        raise InputError(f"{where}: trajectory times must be {len(refs)} numbers in (0, 1), one per reference")
    return {"references": list(refs), "times": [float(t) for t in times]}


def check_landmarks(raw, where: str = "landmarks") -> bool:
    if not isinstance(raw, bool):
        raise InputError(f"{where}: landmarks must be true or false, got {raw!r}")
    return raw


def check_score_on(raw, where: str = "score_on") -> str | None:
    """None (the registered grey images) or one of SCORE_ON."""
    if raw is not None and raw not in SCORE_ON:
        raise InputError(f"{where}: score_on must be one of {', '.join(SCORE_ON)} or absent, got {raw!r}")
    return raw


def check_metrics(wanted, where: str = "metrics") -> list[str] | None:
    """None (every metric) or a list of names of METRIC_NAMES."""
    if wanted is None:
        return None
    if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
        raise InputError(f"{where}: metrics must be a list of metric names or null")
    unknown = sorted(set(wanted) - set(METRIC_NAMES))
    if unknown:
        raise InputError(f"{where}: unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRIC_NAMES)})")
    return list(wanted)


@dataclass
class Registration:
    """One registration output directory and its run.json."""
    path: Path
    run: dict

    @property
    def method(self) -> str:
        return str(self.run["method"])

    @property
    def pair(self) -> str:
        return str(self.run["pair"])

    @property
    def field_path(self) -> Path:
        return self.path / FIELD_FILE

    def registration_time(self) -> float | None:
        """Seconds spent registering this pair, warm-up excluded (never the command's wall time)."""
        for key in RUNTIME_KEYS:
            if self.run.get(key) is not None:
                return float(self.run[key])
        return None


def read_registration(path: str | os.PathLike) -> Registration:
    path = Path(path)
    run_json = path / "run.json"
    if not path.is_dir():
        raise InputError(f"{path}: registration directory not found")
    run = load_json_object(run_json, "run.json")
    missing = [k for k in RUN_KEYS if not run.get(k)]
    if missing:
        raise InputError(f"{run_json}: missing key(s) {', '.join(missing)}")
    if not (path / FIELD_FILE).is_file():
        raise InputError(f"{path / FIELD_FILE}: file not found")
    return Registration(path, run)


def find_registrations(paths: Iterable[str | os.PathLike]) -> list[Registration]:
    """Each path is a registration directory (has run.json) or a folder of them."""
    out: list[Registration] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise InputError(f"{p}: registration directory not found")
        if (p / "run.json").is_file():
            out.append(read_registration(p))
            continue
        subs = sorted(d for d in p.iterdir() if d.is_dir() and (d / "run.json").is_file())
        if not subs:
            raise InputError(f"{p}: no registration output (no run.json here or in its subfolders)")
        out.extend(read_registration(d) for d in subs)
    return out


class ImageIndex:
    """Finds preprocessed images by file name anywhere below one or more folders. `datasets` names
    the dataset of a root's subfolders ({"1": "oasis", ...}: the pipeline stages each file in a
    numbered folder), so that :meth:`only` can tell two datasets' subjects of the same name apart."""

    def __init__(self, roots: Sequence[str | os.PathLike], datasets: dict[str, str] | None = None):
        self.roots = [Path(r) for r in roots]
        self._files: dict[str, list[Path]] = {}
        self._dataset: dict[Path, str] = {}
        for root in self.roots:
            if not root.is_dir():
                raise InputError(f"{root}: images directory not found")
            for f in sorted(root.rglob("*")):
                if f.is_file():
                    self._files.setdefault(f.name, []).append(f)
                    top = f.relative_to(root).parts[0]
                    if datasets and top in datasets:
                        self._dataset[f] = datasets[top]

    def only(self, dataset: str | None) -> "ImageIndex":
        """The files of `dataset` (and those of no known dataset); itself without a dataset."""
        if not dataset or not self._dataset:
            return self
        view = object.__new__(ImageIndex)
        view.roots, view._dataset = self.roots, self._dataset
        view._files = {n: [f for f in fs if self._dataset.get(f, dataset) == dataset]
                       for n, fs in self._files.items()}
        return view

    def has(self, name: str) -> bool:
        return bool(self._files.get(Path(name).name))

    def find(self, name: str, hint: str | None = None) -> Path:
        """Path of the file called ``Path(name).name``; ``hint`` (the path as run.json gave it)
        breaks ties between equal names in different subfolders by the longest common tail."""
        base = Path(name).name
        found = _distinct(self._files.get(base, []))
        if not found:
            where = ", ".join(str(r) for r in self.roots)
            raise InputError(f"{base}: not found under {where}")
        if len(found) == 1:
            return found[0]
        hint_parts = Path(hint or name).parts[::-1]

        def tail(p: Path) -> int:
            n = 0
            for a, b in zip(p.parts[::-1], hint_parts):
                if a != b:
                    break
                n += 1
            return n

        scores = [tail(p) for p in found]
        best = max(scores)
        if scores.count(best) > 1:
            raise InputError(f"{base}: ambiguous, found in {', '.join(str(p.parent) for p in found)}")
        return found[scores.index(best)]


    def find_optional(self, name: str) -> Path | None:
        """As :meth:`find`, None when no file has that name (an optional file: landmarks, RGB)."""
        return self.find(name) if Path(name).name in self._files else None


def read_image_datasets(path: str | os.PathLike | None) -> dict[str, str]:
    """The staging manifest of `--images-datasets`: lines `<folder>\t<dataset>`."""
    if not path:
        return {}
    out = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if line.strip():
            parts = line.split("\t")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise InputError(f"{path}:{n}: expected '<folder><TAB><dataset>', got {line!r}")
            out[parts[0].strip()] = parts[1].strip()
    return out


def _distinct(paths: list[Path]) -> list[Path]:
    """Drop copies (same bytes): a workflow engine may stage one input into several folders."""
    if len(paths) < 2:
        return paths
    by_content: dict[str, Path] = {}
    for p in paths:
        by_content.setdefault(hashlib.sha1(p.read_bytes()).hexdigest(), p)
    return list(by_content.values())


@dataclass
class PairData:
    """Arrays of one evaluated pair, all on the fixed grid (spatial shape S)."""
    disp: np.ndarray            # (D, *S) voxels
    moving: np.ndarray          # (*S), or (C, *S) for a colour image
    fixed: np.ndarray
    moving_labels: np.ndarray
    fixed_labels: np.ndarray
    spacing: tuple[float, ...] | None = None   # fixed image voxel size (mm), for HD95 in mm

    def warped(self) -> np.ndarray:
        return spatial.warp_numpy(self.moving, self.disp, mode="linear")

    def warped_labels(self) -> np.ndarray:
        return spatial.warp_numpy(self.moving_labels, self.disp, mode="nearest")


def load_pair(reg: Registration, images: ImageIndex) -> PairData:
    """Read the field and the four images of one registration, checking shapes and values."""
    disp, field_affine = read_field(reg.field_path)
    if not np.all(np.isfinite(disp)):
        raise InputError(f"{reg.field_path}: contains NaN or Inf values")
    shape = disp.shape[1:]
    arrays = {}
    for key in ("moving", "fixed", "moving_labels", "fixed_labels"):
        path = images.find(reg.run[key])
        arr, affine = (read_labels if key.endswith("labels") else read_image)(path)
        colour = None if key.endswith("labels") else channels_first(arr, shape)
        arr = arr if colour is None else colour
        if arr.shape != shape and colour is None:
            raise InputError(f"{path}: shape {arr.shape} does not match displacement {reg.field_path} {shape}")
        arrays[key] = arr
        if key == "fixed":
            spacing = tuple(float(v) for v in nib.affines.voxel_sizes(affine)[: len(shape)])
            # fields are stored as written (not reoriented): they must already be in the images' RAS order
            if nib.orientations.aff2axcodes(field_affine) != nib.orientations.aff2axcodes(affine):
                raise InputError(f"{reg.field_path}: orientation {''.join(nib.orientations.aff2axcodes(field_affine))} "
                                 f"differs from the fixed image {path} "
                                 f"({''.join(nib.orientations.aff2axcodes(affine))})")
    if arrays["moving"].shape != arrays["fixed"].shape:
        raise InputError(f"{images.find(reg.run['moving'])}: {arrays['moving'].shape} and the fixed image "
                         f"{arrays['fixed'].shape} differ in channels")
    if not np.any(arrays["fixed_labels"]):
        raise InputError(f"{images.find(reg.run['fixed_labels'])}: empty label map")
    if not np.any(arrays["moving_labels"]):
        raise InputError(f"{images.find(reg.run['moving_labels'])}: empty label map")
    return PairData(disp=disp, spacing=spacing, **arrays)


COLOUR_CHANNELS = 3   # RGB; any other trailing axis is a shape mismatch (e.g. a volume against a 2D field)


def channels_first(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """A colour image on the spatial grid `shape`, (*S, 3) or (*S, 1, .., 3) (the trailing
    singleton axes of a NIfTI vector image), as (3, *S); None for anything else."""
    n = len(shape)
    rest = arr.shape[n:]
    if arr.shape[:n] != shape or not rest or rest[-1] != COLOUR_CHANNELS or any(r != 1 for r in rest[:-1]):
        return None
    return np.moveaxis(arr.reshape(*shape, COLOUR_CHANNELS), -1, 0)


# ----------------------------------------------------------------------------- metrics

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


TIME_TOLERANCE = 1e-6


def subject_of(reg: Registration, side: str = "fixed") -> str:
    """The id of the `side` ("moving" or "fixed") subject: the common `<subject>_` prefix of its
    image and label file names."""
    image, labels = Path(str(reg.run[side])).name, Path(str(reg.run.get(f"{side}_labels") or "")).name
    prefix = os.path.commonprefix([image, labels])
    if "_" not in prefix:
        raise InputError(f"{reg.path}: cannot tell the {side} subject from {reg.run[side]} and its labels")
    return prefix[:prefix.rindex("_")]


def fixed_subject(reg: Registration) -> str:
    return subject_of(reg, "fixed")


def modality_of(reg: Registration, side: str) -> str:
    """The registered modality of one side: `<subject>_<modality>.nii.gz` -> modality."""
    name = Path(str(reg.run[side])).name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else Path(name).stem
    return stem[len(subject_of(reg, side)) + 1:]


# ----------------------------------------------------------------------------- colour versions

def colour_name(subject: str, modality: str, version: str) -> str:
    """File name of a subject's `version` (e.g. rgb) of one modality, as PREPROCESS carries it."""
    return f"{subject}_{modality}.{version}.nii.gz"


def _read_version(reg: Registration, side: str, images: ImageIndex, version: str,
                  shape: tuple[int, ...]) -> np.ndarray | None:
    """The `version` image of one side as (C, *S), None when the subject has none; an image on
    another grid than the registered one is an error (the field would be applied to wrong voxels)."""
    path = images.find_optional(colour_name(subject_of(reg, side), modality_of(reg, side), version))
    if path is None:
        return None
    arr, affine = read_image(path)
    colour = channels_first(arr, shape)
    if colour is None:
        raise InputError(f"{path}: shape {arr.shape} is not a colour image on the field's grid {shape} (+ 3 channels)")
    grey_affine = nib.load(str(images.find(reg.run[side]))).affine
    if not np.allclose(affine, grey_affine, atol=1e-4):
        raise InputError(f"{path}: affine differs from the registered image {reg.run[side]}: not on its grid")
    return colour


def on_version(reg: Registration, data: PairData, images: ImageIndex, version: str | None) -> PairData:
    """`data` with moving and fixed images replaced by their `version` (config score_on). A pair
    where neither subject has one keeps its grey images, as a grey photograph's RGB version is its
    grey image in each channel (the same NMSE and SSIM); only one of the two having it is an error."""
    if version is None:
        return data
    shape = data.disp.shape[1:]
    moving, fixed = (_read_version(reg, side, images, version, shape) for side in ("moving", "fixed"))
    if moving is None and fixed is None:
        print(f"note: {reg.path.name}: no {version} version of {reg.run['moving']} or {reg.run['fixed']}: "
              "intensity metrics on the grey images", file=sys.stderr)
        return data
    if moving is None or fixed is None:
        side = "moving" if moving is None else "fixed"
        raise InputError(f"{colour_name(subject_of(reg, side), modality_of(reg, side), version)}: not found, "
                         f"but the other image of {reg.path.name} has its {version} version")
    return replace(data, moving=moving, fixed=fixed)


# ----------------------------------------------------------------------------- landmarks

def read_landmarks(path: Path, modality: str, ndim: int) -> pd.DataFrame | None:
    """Landmarks of one modality from a landmark CSV as a (name -> coordinates) frame with columns
    the first `ndim` of x, y, z; None when the file has no columns for that modality. Landmarks
    with a missing coordinate (not found on that image) are left out."""
    df = read_csv_text(path, "landmarks")
    cols = [f"{a}_{modality}" for a in LANDMARK_AXES[:ndim]]
    if "name" not in df.columns:
        raise InputError(f"{path}: no 'name' column (landmark CSV: name, x_<modality>, y_<modality>, ...)")
    if not set(cols) <= set(df.columns):
        return None
    if df["name"].duplicated().any():
        raise InputError(f"{path}: landmark names are not unique")
    raw = df[cols].apply(lambda c: c.str.strip())
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & ~raw.apply(lambda c: c.str.lower().isin(["", "nan"]))
    if bad.to_numpy().any():
        i = int(np.flatnonzero(bad.to_numpy().any(axis=1))[0])
        raise InputError(f"{path}: row {i + 2}: coordinates {list(raw.iloc[i])} are not numbers")
    values.index = df["name"].str.strip()
    values.columns = list(LANDMARK_AXES[:ndim])
    return values.dropna()


def landmark_points(reg: Registration, images: ImageIndex, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(fixed points, moving points), (N, D) voxels, of the landmarks both sides have (by name);
    None when a subject has no landmark file, no columns for its modality, or no landmark in common."""
    found = []
    for side in ("fixed", "moving"):
        path = images.find_optional(f"{subject_of(reg, side)}_landmarks.csv")
        pts = read_landmarks(path, modality_of(reg, side), ndim) if path is not None else None
        if pts is None:
            return None
        found.append(pts)
    common = found[0].index.intersection(found[1].index)
    if common.empty:
        return None
    return found[0].loc[common].to_numpy(np.float64), found[1].loc[common].to_numpy(np.float64)


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


# ----------------------------------------------------------------------------- the CSV

def write_metrics(df: pd.DataFrame, path: str | os.PathLike) -> None:
    df[COLUMNS].to_csv(path, index=False, na_rep="nan", float_format="%.10g")


def read_csv_text(path: str | os.PathLike, kind: str) -> pd.DataFrame:
    """A CSV as strings (no NaN guessing), or one InputError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a {kind} CSV ({str(exc).splitlines()[0]})") from None


def read_metrics(path: str | os.PathLike, allow_empty: bool = False) -> pd.DataFrame:
    """Read and check one long metrics CSV (exact columns, numeric values); `allow_empty` for
    merged tables of a run without a main path (papers only)."""
    df = read_csv_text(path, "metrics")
    if list(df.columns) != COLUMNS:
        raise InputError(f"{path}: columns must be {','.join(COLUMNS)}, got {','.join(map(str, df.columns))}")
    if df.empty and not allow_empty:
        raise InputError(f"{path}: no rows")
    values = pd.to_numeric(df["value"].str.strip(), errors="coerce")
    bad = values.isna() & ~df["value"].str.strip().str.lower().isin(["nan", ""])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: row {i + 2}: value {df['value'].iloc[i]!r} is not a number")
    df["value"] = values.astype(float)
    return df
