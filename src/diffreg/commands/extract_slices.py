"""`diffreg extract-slices`: 2D images from preprocessed 3D subjects, one slice per subject.

All images and label maps of a subject are cut at the same index, so a 2D task (e.g. DGIR's
missing-anatomy registration) can run on 3D data. `AXIS:label` picks, per subject, the slice
with the most labelled voxels in the subject's label map.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from diffreg.errors import InputError
from diffreg.io import RunManifest, load_nifti, write_image
from diffreg.preprocess import slices

NAME = "extract-slices"
HELP = "Cut every <subject>_*.nii.gz of a folder at one slice per subject (3D -> 2D)"


def add_arguments(p) -> None:
    p.add_argument("--in-dir", required=True, type=Path, help="folder of <subject>_<name>.nii.gz (3D)")
    p.add_argument("--out-dir", required=True, type=Path, help="folder for the 2D files (same names)")
    p.add_argument("--slice", default="2:mid", help="AXIS[:mid|label|INDEX], e.g. 2:mid (axial middle)")
    p.add_argument("--tag", default="2d",
                   help="inserted after the subject id (<subject>_<tag>_<name>), so that 2D and 3D files "
                        "of one subject never share a name; '' keeps the names")


def _subject(path: Path) -> str:
    return path.name.split("_")[0]


def run(args) -> int:
    axis, where = slices.parse_slice(args.slice)
    files = sorted(args.in_dir.glob("*.nii*"))
    if not files:
        raise InputError(f"{args.in_dir}: no NIfTI files")
    by_subject: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        by_subject[_subject(f)].append(f)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    chosen = {}
    for subject, paths in by_subject.items():
        imgs = {p: load_nifti(p) for p in paths}
        shape = next(iter(imgs.values())).shape
        labels = next((np.asarray(im.dataobj) for p, im in imgs.items() if p.name.endswith("_labels.nii.gz")), None)
        k = slices.slice_index(tuple(shape), axis, where, labels)
        for p, im in imgs.items():
            if im.shape != shape:
                raise InputError(f"{p}: shape {im.shape} differs from the subject's {shape}")
            arr, affine = slices.extract(np.asarray(im.dataobj), im.affine, axis, k)
            name = p.name if not args.tag else p.name.replace(f"{subject}_", f"{subject}_{args.tag}_", 1)
            write_image(args.out_dir / name, arr, affine)
        chosen[subject] = k
    manifest = RunManifest(NAME, vars(args))
    manifest.update(axis=axis, index=chosen)
    manifest.write(args.out_dir / "slices.json")
    print(f"[extract-slices] {len(files)} files of {len(chosen)} subjects cut along axis {axis}", flush=True)
    return 0
