"""ACDC (cardiac cine MRI, 100 training + 50 testing patients), end-diastole, end-systole and the
cine's intermediate frames.

Layout: <root>/{training,testing}/patientXXX/Info.cfg ("ED: 1", "ES: 12", "NbFrame: 30", ...),
patientXXX_frameYY.nii.gz and patientXXX_frameYY_gt.nii.gz (0 background, 1 RV, 2 myocardium,
3 LV), patientXXX_4d.nii.gz (the whole cine, frames on the last axis). Samplesheet modalities
``ed`` and ``es`` with per-frame labels (labels_ed, labels_es), and ``mid1`` .. ``mid3``: the cine
frames nearest the times 0.25, 0.5, 0.75 of the way from ED to ES (DiffuseMorph Table 2's
continuous deformation; the same names as the acdc stand-in), written under data/ beside the
samplesheet, without labels (empty labels_mid<k>), with their frame number and real time in
frame_mid<k> / time_mid<k>. A patient whose cine is missing or does not fit keeps ED and ES, with
a note and a line in skipped.csv. DiffuseMorph: ED moving -> ES fixed; DiffuseReg: ES moving -> ED
fixed; LDM-Morph: the 2D mid-slice (preprocess --extract-slice 2:mid). Splits that draw subjects
(counts, val_from_train) are stratified by Info.cfg's Group (NOR, MINF, DCM, HCM, RV: blocks of
20 in patient order), seeded. Folders named patient* but not patientNNN are skipped with a note."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ...io import load_nifti
from . import ADAPTERS
from .common import AdapterArgs, Skipped, assign_splits, dataset_config, note, save_nifti, split_rule, write_outputs

PATIENT = re.compile(r"patient\d{3}")
LABELS = {0: "background", 1: "right ventricle", 2: "myocardium", 3: "left ventricle"}
# nominal times of mid1..mid3: the stand-in's 5 frames at k / 4, the times task acdc_3d scores
MID_TIMES = (0.25, 0.5, 0.75)


def read_info(path: Path) -> dict[str, str]:
    info = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    for k in ("ED", "ES"):
        if k not in info or not info[k].isdigit():
            raise InputError(f"{path}: no integer '{k}:' line")
    return info


def cine_frame(ed: int, es: int, n: int, t: float) -> tuple[int, float]:
    """The 1-based frame nearest ED + t (ES - ED) and its real fraction of the way from ED to ES.
    The cine is one cardiac cycle, so when ES < ED the way runs forward past frame n to frame 1.
    Halves round up (to the later frame)."""
    span = (es - ed) % n
    steps = math.floor(t * span + 0.5)
    return (ed - 1 + steps) % n + 1, steps / span


def cine_problem(cine: Path, shape: tuple[int, ...], info: dict[str, str]) -> str | None:
    """Why `cine` cannot give the intermediate frames (None when it can), from its header only."""
    if not cine.exists():
        return "missing"
    try:
        dims = load_nifti(cine, canonical=False).shape
    except InputError as exc:
        return str(exc).removeprefix(f"{cine}: ")
    if len(dims) != 4:
        return f"shape {dims} is not a 4D cine"
    n, ed, es = dims[-1], int(info["ED"]), int(info["ES"])
    if tuple(dims[:3]) != tuple(shape):
        return f"frame grid {dims[:3]} differs from the ED frame's {tuple(shape)}"
    if info.get("NbFrame", str(n)) != str(n):
        return f"{n} frames, Info.cfg says NbFrame: {info['NbFrame']}"
    if not (1 <= ed <= n and 1 <= es <= n) or ed == es:
        return f"ED {ed} / ES {es} do not name two frames of its {n}"
    return None


def write_mid_frames(cine: Path, ed: int, es: int, outdir: Path) -> dict[str, object]:
    """Columns image_mid<k>, labels_mid<k> (empty: no labels), frame_mid<k>, time_mid<k> of the
    frames at MID_TIMES, written as <patient>_frameYY.nii.gz in `outdir`."""
    img = load_nifti(cine, canonical=False)
    try:  # one read: slicing a .gz per frame would decompress it again for each
        frames = np.asanyarray(img.dataobj)
    except Exception as exc:  # a truncated .gz fails only when its data are read
        raise InputError(f"{cine}: unreadable ({exc})") from None
    if frames.dtype == np.float64:  # nibabel's scaled ints: float32 is the precision of the rest
        frames = frames.astype(np.float32)
    cols: dict[str, object] = {}
    for k, t in enumerate(MID_TIMES, start=1):
        frame, real = cine_frame(ed, es, frames.shape[-1], t)
        dst = outdir / f"{cine.name.removesuffix('_4d.nii.gz')}_frame{frame:02d}.nii.gz"
        save_nifti(dst, frames[..., frame - 1], img.affine)
        cols.update({f"image_mid{k}": str(dst), f"labels_mid{k}": "", f"frame_mid{k}": str(frame),
                     f"time_mid{k}": round(real, 4)})
    return cols


def mid_columns(p: Path, info: dict[str, str], ed_image: Path, workdir: Path, skipped: Skipped) -> dict[str, object]:
    """The mid-frame columns of patient folder `p`, or none (noted, listed in skipped.csv) when its
    cine cannot give them: the patient itself stays, with ED and ES."""
    cine = p / f"{p.name}_4d.nii.gz"
    problem = cine_problem(cine, load_nifti(ed_image, canonical=False).shape, info)
    if problem:
        skipped.add(str(cine), f"{problem}; no intermediate frames (mid1..mid{len(MID_TIMES)}) for {p.name}")
        return {}
    return write_mid_frames(cine, int(info["ED"]), int(info["ES"]), workdir / p.name)


def note_mid_times(rows: list[dict]) -> None:
    """Say how far the chosen frames are from the nominal times (a cine has no frame at exactly
    0.25 of the way unless ES - ED is a multiple of 4)."""
    real = [(r[f"time_mid{k}"], t) for r in rows if "image_mid1" in r for k, t in enumerate(MID_TIMES, start=1)]
    if real:
        worst = max(abs(a - t) for a, t in real)
        note(f"intermediate frames mid1..mid{len(MID_TIMES)} at nominal times "
             f"{', '.join(f'{t:g}' for t in MID_TIMES)} of ED -> ES: the nearest cine frame for "
             f"{len(real) // len(MID_TIMES)} patient(s); real times in time_mid<k>, "
             f"at most {worst:.3f} off")


@ADAPTERS.register("acdc")
def build(args: AdapterArgs) -> dict:
    if args.root is None or not args.root.is_dir():
        raise InputError(f"{args.root}: --root must be ACDC's database folder (with training/ and testing/)")
    root = args.root.resolve()  # the samplesheet resolves relative paths against its own folder
    with_mid = bool(args.options.get("mid_frames", True))
    found, group, pathology = {}, {}, {}
    skipped = Skipped()
    for folder, split in (("training", "train"), ("testing", "test")):
        for p in sorted((root / folder).glob("patient*")):
            if not p.is_dir():
                continue
            if not PATIENT.fullmatch(p.name):  # e.g. patient001_backup: not a patient of the release
                skipped.add(str(p), "folder name is not patientNNN")
                continue
            info = read_info(p / "Info.cfg") if (p / "Info.cfg").exists() else None
            if info is None:
                raise InputError(f"{p}: Info.cfg missing")
            files = {}
            for phase in ("ED", "ES"):
                stem = f"{p.name}_frame{int(info[phase]):02d}"
                files[phase] = (p / f"{stem}.nii.gz", p / f"{stem}_gt.nii.gz")
                for f in files[phase]:
                    if not f.exists():
                        raise InputError(f"{f}: missing ({phase} frame {info[phase]} per Info.cfg)")
            found[p.name], group[p.name] = (p, info, files), split
            pathology[p.name] = info.get("Group", "")
    if not found:
        raise InputError(f"{args.root}: no training/patientXXX or testing/patientXXX folders")
    conf = dataset_config("acdc", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    # where the scheme draws subjects (counts, val_from_train), draw them stratified by pathology
    split = assign_splits(list(found), rule, given=group, strata=pathology, seed=int(args.options.get("seed") or 0))
    rows = []
    for sid, (p, info, files) in found.items():
        if sid not in split:
            continue
        mids = mid_columns(p, info, files["ED"][0], args.workdir, skipped) if with_mid else {}
        rows.append({"subject": sid, "split": split[sid],
                     "image_ed": str(files["ED"][0]), "image_es": str(files["ES"][0]),
                     "labels_ed": str(files["ED"][1]), "labels_es": str(files["ES"][1]),
                     "prealigned": "true", **mids})
    note_mid_times(rows)
    out = write_outputs(pd.DataFrame(rows), args, conf, LABELS, skipped)
    out["split_scheme"] = scheme
    return out
