"""CAMUS (2D echocardiography, 500 patients; apical two- and four-chamber views at ED and ES).

Layout: <root>/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}.{nii.gz,mhd} and ..._gt.{nii.gz,mhd}
(0 background, 1 LV endocardium, 2 LV myocardium, 3 left atrium); the patient folders may also
sit under training/ (2019 release) or database_nifti/ (2023 NIfTI release). MetaImage files are
converted to NIfTI. The 2023 release's database_split/subgroup_{training,validation,testing}.txt
give the split when present (unless --split-scheme is given); otherwise the YAML's scheme does.
Folders that are not patientNNNN or lack the view's files are skipped with a note. One
samplesheet per view (--view); modalities ``ed``/``es`` with per-frame labels. LDM-Morph: ED -> ES,
resized to 112 then padded to 128 (preprocess --resize 112 112 --shape 128 128), Dice on the LV."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .common import AdapterArgs, Skipped, assign_splits, dataset_config, note, split_rule, to_nifti, write_outputs

PATIENT = re.compile(r"patient\d{4}")
SPLIT_FILES = {"training": "train", "validation": "val", "testing": "test"}
LABELS = {0: "background", 1: "LV endocardium", 2: "LV myocardium", 3: "left atrium"}


def _one(folder: Path, stem: str) -> Path | None:
    for ext in (".nii.gz", ".nii", ".mhd"):
        if (folder / f"{stem}{ext}").exists():
            return folder / f"{stem}{ext}"
    return None


def patient_folders(root: Path) -> list[Path]:
    """Folders named patient* directly under `root`, under its training/ level (the 2019 release)
    and under database_nifti/ (the 2023 NIfTI release); the first place a name is seen wins."""
    seen: dict[str, Path] = {}
    for base in (root, root / "training", root / "database_nifti"):
        if base.is_dir():
            for p in sorted(base.glob("patient*")):
                if p.is_dir():
                    seen.setdefault(p.name, p)
    return [seen[k] for k in sorted(seen)]


def split_lists(root: Path) -> dict[str, str] | None:
    """patient -> split from database_split/subgroup_{training,validation,testing}.txt (one name
    a line), or None when the release ships no such folder."""
    folder = root / "database_split"
    files = {s: folder / f"subgroup_{name}.txt" for name, s in SPLIT_FILES.items()}
    if not any(f.exists() for f in files.values()):
        return None
    given: dict[str, str] = {}
    for split, f in files.items():
        if f.exists():
            for line in f.read_text().splitlines():
                if line.strip():
                    given.setdefault(line.strip(), split)
    return given


@ADAPTERS.register("camus")
def build(args: AdapterArgs) -> dict:
    view = str(args.options.get("view") or "2CH").upper()
    if view not in ("2CH", "4CH"):
        raise InputError(f"--view {view}: choose 2CH or 4CH")
    if args.root is None or not args.root.is_dir():
        raise InputError(f"{args.root}: --root must be the CAMUS folder of patientXXXX folders")
    found, skipped = {}, Skipped()
    for p in patient_folders(args.root):
        if not PATIENT.fullmatch(p.name):
            skipped.add(str(p), "folder name is not patientNNNN")
            continue
        files = {}
        for phase in ("ED", "ES"):
            img, gt = _one(p, f"{p.name}_{view}_{phase}"), _one(p, f"{p.name}_{view}_{phase}_gt")
            if img is None or gt is None:
                break
            files[phase] = (img, gt)
        if len(files) < 2:
            skipped.add(str(p), f"no {p.name}_{view}_{{ED,ES}}[_gt] .nii.gz/.nii/.mhd files")
            continue
        found[p.name] = files
    if not found:
        raise InputError(f"{args.root}: no patientXXXX folders with {view} ED/ES images and _gt "
                         "(looked in it, training/ and database_nifti/)")
    conf = dataset_config("camus", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    given = split_lists(args.root)
    if given is not None and args.split_scheme is None:  # the release's own split, unless a scheme is asked for
        n = {s: sum(1 for p in found if given.get(p) == s) for s in ("train", "val", "test")}
        note(f"split from {args.root / 'database_split'} lists: {n['train']} train, {n['val']} val, "
             f"{n['test']} test (instead of the '{scheme}' scheme)")
        for pid in sorted(set(found) - set(given)):
            skipped.add(pid, "not in any database_split list")
        absent = sorted(set(given) - set(found))
        if absent:
            note(f"{len(absent)} patient(s) of the database_split lists not found with {view} files "
                 f"(first: {absent[0]})")
        scheme, rule = "database_split", {"from": "given"}
        split = assign_splits([p for p in found if p in given], rule, given=given)
    else:
        if given is not None:
            note(f"--split-scheme {scheme}: the database_split lists are not used")
        split = assign_splits(list(found), rule)
    rows = []
    for pid, files in found.items():
        if pid not in split:
            continue
        conv = {ph: (to_nifti(i, args.workdir / pid), to_nifti(g, args.workdir / pid, label=True))
                for ph, (i, g) in files.items()}
        rows.append({"subject": f"{pid}_{view}", "split": split[pid],
                     "image_ed": conv["ED"][0], "image_es": conv["ES"][0],
                     "labels_ed": conv["ED"][1], "labels_es": conv["ES"][1], "prealigned": "true"})
    out = write_outputs(pd.DataFrame(rows), args, conf, LABELS, skipped)
    out["split_scheme"] = scheme
    return out
