"""ACDC (cardiac cine MRI, 100 training + 50 testing patients), end-diastole and end-systole.

Layout: <root>/{training,testing}/patientXXX/Info.cfg ("ED: 1", "ES: 12", ...),
patientXXX_frameYY.nii.gz and patientXXX_frameYY_gt.nii.gz (0 background, 1 RV, 2 myocardium,
3 LV). Samplesheet modalities ``ed`` and ``es`` with per-frame labels (labels_ed, labels_es).
DiffuseMorph: ED moving -> ES fixed; DiffuseReg: ES moving -> ED fixed; LDM-Morph: the 2D
mid-slice (preprocess --extract-slice 2:mid). Splits that draw subjects (counts, val_from_train) are
stratified by Info.cfg's Group (NOR, MINF, DCM, HCM, RV: blocks of 20 in patient order), seeded.
Folders named patient* but not patientNNN are skipped with a note."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .common import AdapterArgs, Skipped, assign_splits, dataset_config, split_rule, write_outputs

PATIENT = re.compile(r"patient\d{3}")
LABELS = {0: "background", 1: "right ventricle", 2: "myocardium", 3: "left ventricle"}


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


@ADAPTERS.register("acdc")
def build(args: AdapterArgs) -> dict:
    if args.root is None or not args.root.is_dir():
        raise InputError(f"{args.root}: --root must be ACDC's database folder (with training/ and testing/)")
    found, group, pathology = {}, {}, {}
    skipped = Skipped()
    for folder, split in (("training", "train"), ("testing", "test")):
        for p in sorted((args.root / folder).glob("patient*")):
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
            found[p.name], group[p.name] = files, split
            pathology[p.name] = info.get("Group", "")
    if not found:
        raise InputError(f"{args.root}: no training/patientXXX or testing/patientXXX folders")
    conf = dataset_config("acdc", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    # where the scheme draws subjects (counts, val_from_train), draw them stratified by pathology
    split = assign_splits(list(found), rule, given=group, strata=pathology, seed=int(args.options.get("seed") or 0))
    rows = []
    for sid, files in found.items():
        if sid not in split:
            continue
        rows.append({"subject": sid, "split": split[sid],
                     "image_ed": str(files["ED"][0]), "image_es": str(files["ES"][0]),
                     "labels_ed": str(files["ED"][1]), "labels_es": str(files["ES"][1]),
                     "prealigned": "true"})
    out = write_outputs(pd.DataFrame(rows), args, conf, LABELS, skipped)
    out["split_scheme"] = scheme
    return out
