"""EchoNet-Dynamic (10,030 apical four-chamber echo videos, 112x112): the two traced frames of
each video become ED and ES images with left-ventricle masks.

Layout: <root>/FileList.csv (FileName, ..., Split = TRAIN/VAL/TEST), <root>/VolumeTracings.csv
(FileName, X1, Y1, X2, Y2, Frame: per traced frame, the first row is the long axis, the others
the chords across the ventricle) and <root>/Videos/<FileName>.avi. A mask is the polygon through
the chords' (X1, Y1) ends and, back, their (X2, Y2) ends. The traced frame with the larger
area is end-diastole. Frames and masks are written as 2D NIfTI next to the samplesheet. Videos
with fewer than two traced frames are skipped, one note each, and listed in skipped.csv."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .avi import read_avi
from .common import AdapterArgs, Skipped, assign_splits, dataset_config, save_nifti, split_rule, write_outputs

LABELS = {0: "background", 1: "left ventricle"}


def trace_mask(rows: pd.DataFrame, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 mask of one traced frame (image rows/cols)."""
    from skimage.draw import polygon

    chords = rows.iloc[1:]
    if len(chords) < 2:
        raise InputError(f"{rows['FileName'].iloc[0]} frame {rows['Frame'].iloc[0]}: fewer than 2 chords")
    xs = np.concatenate([chords["X1"].to_numpy(), chords["X2"].to_numpy()[::-1]])
    ys = np.concatenate([chords["Y1"].to_numpy(), chords["Y2"].to_numpy()[::-1]])
    rr, cc = polygon(ys, xs, shape)
    mask = np.zeros(shape, np.uint8)
    mask[rr, cc] = 1
    return mask


def _to_ras(img: np.ndarray) -> np.ndarray:
    """Image rows (top to bottom) x cols -> array (x, y) with y pointing up."""
    return np.ascontiguousarray(img.T[:, ::-1])


@ADAPTERS.register("echonet")
def build(args: AdapterArgs) -> dict:
    root = args.root
    if root is None or not (root / "FileList.csv").exists() or not (root / "VolumeTracings.csv").exists():
        raise InputError(f"{root}: --root must hold FileList.csv, VolumeTracings.csv and Videos/")
    files = pd.read_csv(root / "FileList.csv")
    traces = pd.read_csv(root / "VolumeTracings.csv")
    for col in ("FileName", "Split"):
        if col not in files.columns:
            raise InputError(f"{root / 'FileList.csv'}: no column {col}")
    for col in ("FileName", "X1", "Y1", "X2", "Y2", "Frame"):
        if col not in traces.columns:
            raise InputError(f"{root / 'VolumeTracings.csv'}: no column {col}")
    stem = lambda s: str(s)[:-4] if str(s).lower().endswith(".avi") else str(s)  # noqa: E731
    files["id"] = files["FileName"].map(stem)
    traces["id"] = traces["FileName"].map(stem)
    limit = args.options.get("limit")
    if limit:
        files = files.iloc[: int(limit)]
    given = {i: str(s).strip().lower() for i, s in zip(files["id"], files["Split"])}
    conf = dataset_config("echonet", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    split = assign_splits(list(given), rule, given=given)
    rows, skipped = [], Skipped()
    for vid in files["id"]:
        if vid not in split:
            continue
        tr = traces[traces["id"] == vid]
        frames = sorted(tr["Frame"].unique())
        if len(frames) < 2:  # a handful of videos lack tracings: they cannot be evaluated
            skipped.add(f"{vid}.avi", f"{len(frames)} traced frame(s) in VolumeTracings.csv, 2 needed")
            continue
        video = read_avi(root / "Videos" / f"{vid}.avi")
        shape = video.shape[1:]
        masks = {f: trace_mask(tr[tr["Frame"] == f], shape) for f in frames[-2:]}
        ed, es = sorted(masks, key=lambda f: masks[f].sum(), reverse=True)
        out = {}
        for phase, f in (("ed", ed), ("es", es)):
            if f >= len(video):
                raise InputError(f"{vid}.avi: traced frame {f} beyond its {len(video)} frames")
            d = args.workdir / vid
            out[phase] = (save_nifti(d / f"{vid}_{phase}.nii.gz", _to_ras(video[f]).astype(np.float32)),
                          save_nifti(d / f"{vid}_{phase}_gt.nii.gz", _to_ras(masks[f])))
        rows.append({"subject": vid, "split": split[vid], "image_ed": out["ed"][0], "image_es": out["es"][0],
                     "labels_ed": out["ed"][1], "labels_es": out["es"][1], "prealigned": "true"})
    res = write_outputs(pd.DataFrame(rows), args, conf, LABELS, skipped)
    res["split_scheme"] = scheme
    return res
