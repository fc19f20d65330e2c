"""Small copies of the embedded stand-ins in each dataset's PUBLIC on-disk layout, so that the real
adapter (``diffreg dataset NAME``) reads them exactly as it reads the download: format checks of
every recipe in docs/datasets.md, end to end through the pipeline, in seconds.

=============  ====================  ======================================================  ==========
name           from stand-in         layout written                                          stray item
=============  ====================  ======================================================  ==========
neurite-oasis  brain (3D)            OASIS_OAS1_NNNN_MR1/aligned_{norm,orig,seg4}.nii.gz     _backup dir
oasis3         brain (3D)            OAS3NNNN_MR_d0000/mri/{brain,aseg}.mgz (FreeSurfer)      none
acdc           acdc (3D cine)        {training,testing}/patientNNN/Info.cfg, frames, _gt, _4d  _backup dir
camus          camus (2D, 2CH)       database_nifti/patientNNNN/..., database_split/*.txt    _old dir
echonet        echonet (2D video)    Videos/*.avi, FileList.csv, VolumeTracings.csv          untraced video
adni           adni (3D)             subjects.csv + <subject>/{t1,pet,fa,aseg}.nii.gz         none
knee           brain 2D slices       knees.csv + PNG images and bone-label PNGs              none
=============  ====================  ======================================================  ==========

Each writer returns a :class:`Layout`: where the copy is and the ``diffreg dataset`` arguments that
read it (a split scheme that fits a few subjects where the dataset's own counts need hundreds).
The knee copy is a format check only: brain slices saved as DXA-like (no soft tissue) and
X-ray-like PNGs, their tissue labels as "bones"; no knee anatomy is invented.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pandas as pd

from ..errors import InputError
from . import standins
from .adapters.common import dataset_config

NAMES = ("neurite-oasis", "oasis3", "acdc", "camus", "echonet", "adni", "knee")


@dataclass
class Layout:
    """A written copy: `args` completes `diffreg dataset <name> ... --out SHEET`; `n_subjects` rows
    come back; `strays` are the items the adapter must list in skipped.csv."""
    name: str
    path: Path
    args: list[str]
    n_subjects: int
    strays: list[str] = field(default_factory=list)

    def command(self, out: str | Path) -> list[str]:
        return ["dataset", self.name, *self.args, "--out", str(out)]


# ---- helpers ------------------------------------------------------------------------------------

def _standin(name: str, scratch: Path, **given) -> pd.DataFrame:
    """Generate stand-in `name` into `scratch`; its samplesheet with absolute paths."""
    st = standins.get(name)
    return st.generate(scratch, standins.make_config(st, **given), absolute_paths=True)


def _save(path: Path, arr: np.ndarray, affine: np.ndarray, cls=nib.Nifti1Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(cls(np.asarray(arr), affine), str(path))
    return path


def _load(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj), img.affine


def _remap(path: str | Path, lut: dict[int, int], dst: Path, cls=nib.Nifti1Image) -> Path:
    """Label map `path` with values renamed by `lut` (the dataset's own label values)."""
    arr, aff = _load(path)
    out = np.zeros(arr.shape, np.uint8 if max(lut.values()) < 256 else np.int16)
    for k, v in lut.items():
        out[arr == k] = v
    return _save(dst, out, aff, cls)


def _small_config(dataset: str, dst: Path, scheme: dict) -> Path:
    """The dataset's pairing file with one split scheme that fits a small copy (the real scheme
    counts hundreds of subjects): pairings unchanged."""
    import yaml
    conf = dataset_config(dataset)
    conf["splits"] = {"default": "small", "schemes": {"small": scheme}}
    dst.write_text(yaml.safe_dump(conf, sort_keys=False))
    return dst


# ---- one writer per dataset -------------------------------------------------------------------------

# toy labels 1 CSF, 2 grey matter, 3 white matter -> Neurite-OASIS seg4 (1 cortex, 3 WM, 4 CSF)
SEG4 = {1: 4, 2: 1, 3: 3}
# -> FreeSurfer aseg values (4 lateral ventricle, 3 cortex, 2 white matter; left hemisphere's)
ASEG = {1: 4, 2: 3, 3: 2}
# adni stand-in groups 1 white matter, 2 cortex, 3 ventricles, 9 brainstem -> the same aseg values (16)
ADNI_ASEG = {1: 2, 2: 3, 3: 4, 9: 16}


def neurite_oasis(root: Path, n: int, size: int, seed: int, scratch: Path) -> Layout:
    df = _standin("brain", scratch, n_subjects=n, size=size, ndim=3, seed=seed)
    for i, r in enumerate(df.itertuples(), start=1):
        d = root / f"OASIS_OAS1_{i:04d}_MR1"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(r.image_be, d / "aligned_norm.nii.gz")
        shutil.copy(r.image_nbe, d / "aligned_orig.nii.gz")
        _remap(r.labels, SEG4, d / "aligned_seg4.nii.gz")
    stray = root / "OASIS_OAS1_0001_MR1_backup"
    stray.mkdir(exist_ok=True)
    conf = _small_config("neurite-oasis", root / "small_split.yaml", {"train": "rest", "val": 0, "test": 2})
    return Layout("neurite-oasis", root, ["--root", str(root), "--config", str(conf)], n, [str(stray)])


def oasis3(root: Path, n: int, size: int, seed: int, scratch: Path) -> Layout:
    df = _standin("brain", scratch, n_subjects=n, size=size, ndim=3, seed=seed)
    for i, r in enumerate(df.itertuples(), start=1):
        mri = root / f"OAS3{i:04d}_MR_d0000" / "mri"  # FreeSurfer's own layout, MGZ files
        img, aff = _load(r.image_be)
        _save(mri / "brain.mgz", img.astype(np.float32), aff, nib.MGHImage)
        _remap(r.labels, ASEG, mri / "aseg.mgz", nib.MGHImage)
    # the release's split counts are 1027 / 93 / 129; the YAML declares one for small copies
    return Layout("oasis3", root, ["--root", str(root), "--split-scheme", "proportional_small"], n)


def acdc(root: Path, n: int, size: int, seed: int, scratch: Path, n_frames: int = 5) -> Layout:
    df = _standin("acdc", scratch, n_subjects=n, size=size, ndim=3, seed=seed, slices=8, n_frames=n_frames)
    frames = pd.read_csv(scratch / "frames.csv")
    groups = ("NOR", "MINF", "DCM", "HCM", "RV")
    for i, r in enumerate(df.itertuples()):
        folder = "testing" if r.split == "test" else "training"
        d = root / folder / r.subject
        d.mkdir(parents=True, exist_ok=True)
        own = frames[frames["subject"] == r.subject].sort_values("frame")
        cine = [_load(p) for p in own["image"]]
        _save(d / f"{r.subject}_4d.nii.gz", np.stack([a for a, _ in cine], axis=-1).astype(np.float32), cine[0][1])
        for f in (1, n_frames):  # ED is frame 1, ES the last (Info.cfg's numbers, 1-based)
            shutil.copy(own["image"].iloc[f - 1], d / f"{r.subject}_frame{f:02d}.nii.gz")
            shutil.copy(own["labels"].iloc[f - 1], d / f"{r.subject}_frame{f:02d}_gt.nii.gz")
        (d / "Info.cfg").write_text(f"ED: 1\nES: {n_frames}\nGroup: {groups[i % 5]}\nHeight: 170\n"
                                    f"NbFrame: {n_frames}\nWeight: 70\n")
    stray = root / "training" / "patient001_backup"
    stray.mkdir(parents=True, exist_ok=True)
    return Layout("acdc", root, ["--root", str(root)], n, [str(stray)])


def camus(root: Path, n: int, size: int, seed: int, scratch: Path, view: str = "2CH") -> Layout:
    """Both views, as the release has them; the adapter command reads `view`."""
    lists: dict[str, list[str]] = {"training": [], "validation": [], "testing": []}
    for v in ("2CH", "4CH"):
        df = _standin("camus", scratch / v, n_subjects=n, size=size, seed=seed, view=v)
        for r in df.itertuples():
            pid = r.subject.removesuffix(f"_{v}")
            d = root / "database_nifti" / pid  # the 2023 NIfTI release
            d.mkdir(parents=True, exist_ok=True)
            for col in ("image_ed", "image_es", "labels_ed", "labels_es"):
                shutil.copy(getattr(r, col), d / Path(getattr(r, col)).name)
            if v == "2CH":    # one split per patient (the same seed draws it for both views)
                lists[{"train": "training", "val": "validation", "test": "testing"}[r.split]].append(pid)
    (root / "database_split").mkdir(parents=True, exist_ok=True)
    for name, pids in lists.items():
        (root / "database_split" / f"subgroup_{name}.txt").write_text("".join(p + "\n" for p in pids))
    stray = root / "database_nifti" / "patient0001_old"
    stray.mkdir(exist_ok=True)
    return Layout("camus", root, ["--root", str(root), "--view", view], n, [str(stray)])


def tracings(vid: str, mask_rows: np.ndarray, frame: int) -> list[dict]:
    """VolumeTracings.csv rows of one traced frame: the long axis, then one chord per image row of
    the mask (its left and right edges, pixel borders), so that the adapter's polygon through the
    chord ends covers the mask."""
    rows = np.nonzero(mask_rows.any(axis=1))[0]
    if len(rows) < 2:
        raise InputError(f"{vid} frame {frame}: mask too small to trace")
    cols = np.nonzero(mask_rows.any(axis=0))[0]
    mid = float(cols.mean())
    out = [{"FileName": f"{vid}.avi", "X1": mid, "Y1": rows[0] - 0.5, "X2": mid, "Y2": rows[-1] + 0.5, "Frame": frame}]
    for k, y in enumerate(rows):
        c = np.nonzero(mask_rows[y])[0]
        yy = y - 0.5 if k == 0 else (y + 0.5 if k == len(rows) - 1 else y)
        out.append({"FileName": f"{vid}.avi", "X1": c[0] - 0.5, "Y1": yy, "X2": c[-1] + 0.5, "Y2": yy, "Frame": frame})
    return out


def echonet(root: Path, n: int, size: int, seed: int, scratch: Path, n_frames: int = 8) -> Layout:
    df = _standin("echonet", scratch, n_subjects=n, size=size, seed=seed, n_frames=n_frames)
    (root / "Videos").mkdir(parents=True, exist_ok=True)
    listing = pd.read_csv(scratch / "FileList.csv", dtype={"FileName": str})
    traces = []
    for r in df.itertuples():
        shutil.copy(scratch / "Videos" / f"{r.subject}.avi", root / "Videos" / f"{r.subject}.avi")
        for col, frame in (("labels_ed", 0), ("labels_es", n_frames // 2)):  # the stand-in's ED and ES frames
            mask, _ = _load(getattr(r, col))
            traces += tracings(r.subject, np.asarray(mask).T[::-1] > 0, frame)  # rows top to bottom, as the video
    # a video EchoNet lists without tracings (the release has a few): skipped by the adapter
    stray = f"0X{0xFFFF:016X}"
    shutil.copy(root / "Videos" / f"{df['subject'].iloc[0]}.avi", root / "Videos" / f"{stray}.avi")
    extra = listing.iloc[[0]].assign(FileName=stray, Split="TEST")
    pd.concat([listing, extra]).to_csv(root / "FileList.csv", index=False, lineterminator="\n")
    pd.DataFrame(traces).to_csv(root / "VolumeTracings.csv", index=False, lineterminator="\n")
    return Layout("echonet", root, ["--root", str(root)], n, [f"{stray}.avi"])


def adni(root: Path, n: int, size: int, seed: int, scratch: Path) -> Layout:
    df = _standin("adni", scratch, n_subjects=n, size=size, ndim=3, seed=seed)
    rows = []
    for r in df.itertuples():
        d = root / r.subject
        d.mkdir(parents=True, exist_ok=True)
        for m in ("t1", "pet", "fa"):
            shutil.copy(getattr(r, f"image_{m}"), d / f"{m}.nii.gz")
        # back to FreeSurfer's values: the adapter's merge gives the stand-in's groups again
        _remap(r.labels, ADNI_ASEG, d / "aseg.nii.gz")
        rows.append({"subject": r.subject, "t1": f"{r.subject}/t1.nii.gz", "pet": f"{r.subject}/pet.nii.gz",
                     "fa": f"{r.subject}/fa.nii.gz", "aseg": f"{r.subject}/aseg.nii.gz",
                     "split": "train" if r.split == "val" else r.split})
    csv = root / "subjects.csv"
    pd.DataFrame(rows).to_csv(csv, index=False, lineterminator="\n")
    return Layout("adni", root, ["--csv", str(csv)], n)


def _png(path: Path, arr: np.ndarray) -> str:
    """A 2D (x, y) array as an 8-bit PNG, rows top to bottom (what the adapter's reader undoes)."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(arr.T[::-1]).astype(np.uint8), mode="L").save(path)
    return path.name


def knee(root: Path, n: int, size: int, seed: int, scratch: Path) -> Layout:
    """Format check only: 2D brain slices as DXA-like (brain-extracted: "bones only") and
    X-ray-like (with skull: "soft tissue") PNGs; tissue labels stand for the bone labels."""
    per = max(2, n // 2)  # subjects per modality: at least one train and one test each
    df = _standin("brain", scratch, n_subjects=max(3, 2 * per), size=size, ndim=2, seed=seed)
    rows = []
    for k, r in enumerate(df.itertuples()):
        if k >= 2 * per:
            break
        mod, j = ("dxa", "be") if k < per else ("xray", "nbe")
        sid = f"knee_{mod}_{k % per + 1:02d}"
        img, _ = _load(getattr(r, f"image_{j}"))
        lab, _ = _load(r.labels)
        rows.append({"subject": sid, "modality": mod,
                     "image": "images/" + _png(root / "images" / f"{sid}.png", np.rint(255 * np.clip(img, 0, 1))),
                     "labels": "labels/" + _png(root / "labels" / f"{sid}.png", lab),
                     "split": "test" if k % per == per - 1 else "train"})
    csv = root / "knees.csv"
    pd.DataFrame(rows).to_csv(csv, index=False, lineterminator="\n")
    return Layout("knee", root, ["--csv", str(csv)], len(rows))


WRITERS: dict[str, Callable[..., Layout]] = {
    "neurite-oasis": neurite_oasis, "oasis3": oasis3, "acdc": acdc, "camus": camus,
    "echonet": echonet, "adni": adni, "knee": knee}


def write_layout(name: str, root: str | Path, n_subjects: int = 3, size: int = 32, seed: int = 0) -> Layout:
    """Write the `name` copy into `root` (made; must be empty or absent). The stand-in is made in a
    scratch folder beside it and removed afterwards: only the public layout stays."""
    if name not in WRITERS:
        raise InputError(f"--dataset {name}: no layout writer (have {', '.join(NAMES)})")
    if n_subjects < 3:
        raise InputError(f"--n-subjects {n_subjects}: at least 3 (train and test subjects)")
    root = Path(root).resolve()
    if root.exists() and any(root.iterdir()):
        raise InputError(f"{root}: not empty; a layout copy needs its own folder")
    root.mkdir(parents=True, exist_ok=True)
    scratch = root.parent / f".{root.name}.standin"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        return WRITERS[name](root, n_subjects, size, seed, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
