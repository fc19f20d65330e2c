"""The samplesheet: one CSV row per subject, the single input format of the pipeline.

Schema (docs/samplesheet.md has the long version):

==================  =========  ==============================================================
column              required   meaning
==================  =========  ==============================================================
subject             yes        unique id (letters, digits, ``_ - .``)
split               yes        ``train``, ``val`` or ``test``
image_<modality>    >= 1       an image of the subject, e.g. ``image_nbe``, ``image_be``,
                               ``image_t2``, ``image_ed``; all of a subject's images share one
                               grid (same dimensionality and shape). A cell may be empty when
                               the subject lacks that modality (knee: DXA rows and X-ray rows),
                               but every row has at least one image
labels              yes*       integer label map on that grid, used for every modality; may be
                               empty for train/val rows, required for test rows
labels_<modality>   no         label map of one modality (overrides ``labels`` for it, e.g.
                               ``labels_ed`` / ``labels_es`` for cardiac frames); *``labels`` may
                               be left out when every modality has its own column. A column empty
                               on every row: the modality has no label maps (reference images,
                               e.g. ACDC's intermediate frames ``labels_mid1``), even on test rows
prealigned          no         ``true``/``false``: already affinely aligned to the common space
==================  =========  ==============================================================

Paths are absolute or relative to the samplesheet's folder. Every subject must have the same
dimensionality (all 2D or all 3D). A 2D image may be stored as (X, Y) or (X, Y, 1). Label values
must belong to the declared set (``--label-values``, or the keys of a ``labels.json`` next to the
samplesheet). Any problem stops with one line naming the file, the row and the problem.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import atomic_path

SPLITS = ("train", "val", "test")
IMAGE_PREFIX = "image_"
LABELS_PREFIX = "labels_"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def image_ndim(df: pd.DataFrame) -> int:
    """Dimensionality of the first image (the samplesheet check already made them all agree)."""
    import nibabel as nib

    col = next(c for c in df.columns if c.startswith("image_"))
    path = next(p for p in df[col] if isinstance(p, str) and p)
    shape = nib.load(path).shape
    return 3 if len([n for n in shape if n > 1]) >= 3 else 2


def modalities(df: pd.DataFrame) -> list[str]:
    """Modality names, in column order (``image_be`` -> ``be``)."""
    return [c[len(IMAGE_PREFIX):] for c in df.columns if c.startswith(IMAGE_PREFIX)]


def labels_column(df: pd.DataFrame, modality: str) -> str | None:
    """The column holding the label map of `modality` (its own, else the shared ``labels``)."""
    own = f"{LABELS_PREFIX}{modality}"
    if own in df.columns:
        return own
    return "labels" if "labels" in df.columns else None


def read_label_values(spec: str | None, samplesheet: Path | None = None) -> set[int] | None:
    """Parse ``0,1,2,3`` (or ``0-3``); without a spec, use the keys of ``labels.json`` beside the
    samplesheet when there is one; else None (any non-negative integer is accepted)."""
    if spec:
        values: set[int] = set()
        for part in str(spec).split(","):
            part = part.strip()
            try:
                if "-" in part[1:]:
                    lo, hi = part.split("-", 1)
                    values.update(range(int(lo), int(hi) + 1))
                elif part:
                    values.add(int(part))
            except ValueError:
                raise InputError(f"--label-values {spec}: not a list of integers (e.g. 0,1,2,3 or 0-35)") from None
        return values
    if samplesheet is not None:
        lj = Path(samplesheet).parent / "labels.json"
        if lj.exists():
            try:
                return {int(k) for k in json.loads(lj.read_text())}
            except (ValueError, TypeError) as exc:
                raise InputError(f"{lj}: not a JSON object of label value -> name ({exc})") from None
    return None


@dataclass
class _ImageInfo:
    shape: tuple[int, ...]
    ndim: int
    affine: np.ndarray | None = None   # voxel -> world (mm)
    values: frozenset = frozenset()    # a label map's foreground values


class _Problems:
    """Collects problems; the first one is reported, with how many others followed it."""

    def __init__(self, sheet: Path):
        self.sheet = sheet
        self.items: list[str] = []

    def add(self, line: int | None, subject: str | None, msg: str) -> None:
        where = f"{self.sheet}"
        if line is not None:
            where += f" line {line}" + (f" ({subject})" if subject else "")
        self.items.append(f"{where}: {msg}")

    def raise_if_any(self) -> None:
        if self.items:
            more = f" [and {len(self.items) - 1} more problem(s)]" if len(self.items) > 1 else ""
            raise InputError(self.items[0] + more)


def _image_info(path: Path, is_label: bool, label_values: set[int] | None) -> tuple[_ImageInfo | None, str | None]:
    """(info, None) when the file is fine, else (None, problem)."""
    import nibabel as nib

    if not path.exists():
        return None, f"file not found: {path}"
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        return None, f"unreadable image {path} ({type(exc).__name__}: {exc})"
    shape = tuple(int(s) for s in data.shape)
    while len(shape) > 2 and shape[-1] == 1:  # (X, Y, 1) is a 2D image
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        return None, f"{path}: expected a 2D or 3D image, got shape {tuple(data.shape)}"
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        n = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        return None, f"{path}: {n} NaN or Inf voxel(s)"
    if data.dtype.kind not in "biuf":
        return None, f"{path}: unsupported voxel type {data.dtype}"
    if not is_label and data.size and data.min() == data.max():
        return None, f"{path}: constant image (every voxel is {data.flat[0]:g}): nothing to register"
    if is_label:
        vals = np.unique(data)
        if data.dtype.kind == "f" and not np.all(vals == np.round(vals)):
            return None, f"{path}: label map has non-integer values"
        vals = {int(v) for v in vals}
        bad = sorted(v for v in vals if v < 0 or (label_values is not None and v not in label_values))
        if bad:
            declared = ",".join(map(str, sorted(label_values))) if label_values is not None else ">= 0"
            return None, f"{path}: label values {bad[:10]} outside the declared set ({declared})"
        if vals <= {0}:
            return None, f"{path}: label map is empty (background only)"
    values = frozenset(int(v) for v in np.unique(data) if v != 0) if is_label else frozenset()
    return _ImageInfo(shape, len(shape), np.asarray(img.affine, dtype=float), values), None


GEOMETRY_TOLERANCE_MM = 1e-3


def _image_of_labels(col: str, present: list[str]) -> str | None:
    """The image column a label column belongs to: `labels_<m>` -> `image_<m>`; `labels` -> the first image."""
    if col.startswith(LABELS_PREFIX):
        return f"{IMAGE_PREFIX}{col[len(LABELS_PREFIX):]}"
    if col == "labels" and present:
        return f"{IMAGE_PREFIX}{present[0]}"
    return None


def _cell(row: pd.Series, col: str) -> str:
    v = row.get(col)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def load_samplesheet(path: str | Path, check_images: bool = True,
                     label_values: set[int] | str | None = None, allow_missing_labels: bool = False) -> pd.DataFrame:
    """Read and validate a samplesheet; return it with absolute paths and a boolean ``prealigned``.

    `label_values`: a set, a spec such as "0-3", "any", or None (then labels.json beside the sheet,
    if any). Column checks, ids, splits and paths always run; with `check_images`, every file is opened:
    readability, NaN/Inf, 2D/3D and shape agreement within the subject and across subjects,
    label values. The first problem raises InputError naming the file, line and subject.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: samplesheet not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    # Nextflow's splitCsv reads every cell and header as written: a space around a header or a cell
    # (other than split, which both sides trim and lower-case) would pass here and fail there
    spaced = [c for c in df.columns if c != c.strip()]
    if spaced:
        raise InputError(f"{path}: space around column name(s) {', '.join(repr(c) for c in spaced)}; "
                         "remove the spaces")
    undeclared = label_values is None        # no set given: labels.json beside the sheet, if any
    if label_values == "any":  # no declared set, and no labels.json lookup
        label_values = None
    elif isinstance(label_values, str):
        label_values = read_label_values(label_values)
    elif label_values is None:
        label_values = read_label_values(None, path)
    undeclared = undeclared and label_values is None

    probs = _Problems(path)
    mods = modalities(df)
    unknown_lab = [c for c in df.columns if c.startswith(LABELS_PREFIX) and c[len(LABELS_PREFIX):] not in mods]
    if unknown_lab:
        raise InputError(f"{path}: column(s) {', '.join(unknown_lab)} name no image_<modality> column")
    missing = [c for c in ("subject", "split") if c not in df.columns]
    if not mods:
        missing.append("image_<modality> (at least one)")
    if "labels" not in df.columns and any(f"{LABELS_PREFIX}{m}" not in df.columns for m in mods):
        missing.append("labels")
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; "
                         f"found {', '.join(df.columns) or 'none'}")
    if len(df) == 0:
        raise InputError(f"{path}: no rows")

    base = path.resolve().parent
    label_cols = [c for c in df.columns if c == "labels" or c.startswith(LABELS_PREFIX)]
    # a labels_<modality> column empty on every row declares that modality unlabelled (reference
    # images such as ACDC's intermediate cine frames): test rows need no label map for it
    unlabelled = {c for c in label_cols if c != "labels" and not df[c].str.strip().ne("").any()}
    file_cols = [f"{IMAGE_PREFIX}{m}" for m in mods] + label_cols
    seen: dict[str, int] = {}
    out = df.copy()
    prealigned = []
    ndims: dict[int, tuple[int, str]] = {}
    found: dict[str, set[int]] = {}          # subject -> foreground label values of its label maps
    for i, row in df.iterrows():
        line = int(i) + 2  # header is line 1
        for col in df.columns:
            raw = row.get(col)
            if col != "split" and isinstance(raw, str) and raw != raw.strip():
                probs.add(line, _cell(row, "subject") or None, f"{col}: space around '{raw.strip()}'; remove the spaces")
                break
        sid = _cell(row, "subject")
        if not sid:
            probs.add(line, None, "empty subject id")
        elif not _ID.match(sid):
            probs.add(line, sid, f"subject id '{sid}' has characters other than letters, digits, _ - .")
        elif sid in seen:
            probs.add(line, sid, f"duplicate subject id (first on line {seen[sid]})")
        else:
            seen[sid] = line
        split = _cell(row, "split").lower()
        if split not in SPLITS:
            probs.add(line, sid, f"split '{_cell(row, 'split')}' is not one of {', '.join(SPLITS)}")
        out.at[i, "split"] = split
        pa = _cell(row, "prealigned").lower() if "prealigned" in df.columns else ""
        if pa not in _TRUE | _FALSE:
            probs.add(line, sid, f"prealigned '{pa}' is not true or false")
        prealigned.append(pa in _TRUE)

        present = [m for m in mods if _cell(row, f"{IMAGE_PREFIX}{m}")]
        if not present:
            probs.add(line, sid, "no image (every image_<modality> cell is empty)")
        # test subjects are evaluated: each of their images needs a label map
        needed = {labels_column(df, m) for m in present} - unlabelled if split == "test" else set()
        infos: dict[str, _ImageInfo] = {}
        for col in file_cols:
            val = _cell(row, col)
            if not val:
                if col in needed:
                    probs.add(line, sid, f"{col}: empty cell (test subjects need label maps)")
                continue
            p = Path(val).expanduser()
            p = p if p.is_absolute() else base / p
            out.at[i, col] = str(p)
            if not check_images:
                if not p.exists():
                    probs.add(line, sid, f"{col}: file not found: {p}")
                continue
            info, err = _image_info(p, not col.startswith(IMAGE_PREFIX), label_values)
            if err:
                probs.add(line, sid, f"{col}: {err}")
            else:
                infos[col] = info
                if not col.startswith(IMAGE_PREFIX):
                    found.setdefault(sid, set()).update(info.values)
        if infos:
            first_col, first = next(iter(infos.items()))
            for col, info in infos.items():
                if info.ndim != first.ndim:
                    probs.add(line, sid, f"2D/3D mismatch: {first_col} is {first.ndim}D, {col} is {info.ndim}D")
                    break
                if info.shape != first.shape:
                    probs.add(line, sid, f"shape mismatch: {first_col} {first.shape} vs {col} {info.shape}")
                    break
            # a label map on another grid than its image (e.g. labels at 2 mm on a 1 mm image, same
            # array shape) would be read voxel by voxel against the wrong anatomy: every Dice wrong
            for col, info in infos.items():
                image_col = _image_of_labels(col, present)
                if image_col is None or image_col not in infos:
                    continue
                diff = float(np.abs(info.affine - infos[image_col].affine).max())
                if diff > GEOMETRY_TOLERANCE_MM:
                    probs.add(line, sid, f"{col}: its voxel-to-world affine differs from {image_col}'s by up to "
                                         f"{diff:.3g} mm: a label map must lie on its image's grid")
                    break
            ndims.setdefault(first.ndim, (line, sid))
    if len(ndims) > 1:
        (l2, s2), (l3, s3) = ndims[2], ndims[3]
        probs.add(max(l2, l3), s2 if l2 > l3 else s3,
                  f"2D/3D mismatch across subjects: line {l2} ({s2}) is 2D, line {l3} ({s3}) is 3D")
    probs.raise_if_any()
    if undeclared and not allow_missing_labels:
        _check_same_labels(path, found)
    out["prealigned"] = prealigned
    out.attrs["labels_found"] = {k: sorted(v) for k, v in found.items()}
    return out


def _check_same_labels(path: Path, found: dict[str, set[int]]) -> None:
    """With no declared label set, a label that some labelled subjects lack is most likely a stray
    value (a label 7 among 1-3): its Dice would be 0 where it is missing and drag the mean down."""
    every = set().union(*found.values()) if found else set()
    for value in sorted(every):
        have = sorted(s for s, v in found.items() if value in v)
        if len(have) < len(found):
            raise InputError(
                f"{path}: label {value} is in {len(have)} of the {len(found)} labelled subjects "
                f"({', '.join(have[:5])}{', ...' if len(have) > 5 else ''}); labels found: "
                f"{', '.join(map(str, sorted(every)))}. Declare the labels in a labels.json (value -> name) "
                "beside the samplesheet or with --label_names, or allow it with --allow_missing_labels "
                "(diffreg validate: --allow-missing-labels)")


def write_samplesheet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a samplesheet atomically (columns in schema order, extra columns kept at the end)."""
    cols = ["subject", "split"]
    cols += [c for c in df.columns if c == "labels"]
    cols += [c for c in df.columns if c.startswith(IMAGE_PREFIX)]
    cols += [c for c in df.columns if c.startswith(LABELS_PREFIX)]
    cols += [c for c in df.columns if c not in cols]
    out = df[cols].copy()
    if "prealigned" in out.columns:
        out["prealigned"] = [str(v).lower() if not isinstance(v, bool) else ("true" if v else "false")
                             for v in out["prealigned"]]
    path = Path(path)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False, lineterminator="\n")
    return path
