"""Reading what a registration task wrote: its output directory (``disp.nii.gz``, ``run.json``:
Registration), the preprocessed images it names (ImageIndex), the arrays of one pair on the
fixed grid (PairData), the subjects' colour versions (``score_on``) and landmark files. Shared by
the evaluation, the report's figures and the HTML browser."""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import nibabel as nib
import numpy as np
import pandas as pd

from diffreg import spatial
from diffreg.errors import InputError
from diffreg.io import load_json_object, read_field, read_image, read_labels
from diffreg.metrics_table import read_csv_text

RUN_KEYS = ("method", "pair", "moving", "fixed", "moving_labels", "fixed_labels")
FIELD_FILE = "disp.nii.gz"
RUNTIME_KEYS = ("register_time_s",)  # written by every method and baseline
LANDMARK_AXES = ("x", "y", "z")   # landmark CSV coordinate prefixes, in array-axis order


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
