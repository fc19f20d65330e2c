"""CAMUS (2D echocardiography, 500 patients; apical two- and four-chamber views at ED and ES).

Layout: <root>/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}.{nii.gz,mhd} and ..._gt.{nii.gz,mhd}
(0 background, 1 LV endocardium, 2 LV myocardium, 3 left atrium); the folder may also hold a
training/ level. MetaImage files are converted to NIfTI. One samplesheet per view (--view);
modalities ``ed``/``es`` with per-frame labels. LDM-Morph: ED -> ES, resized to 112 then padded
to 128 (preprocess --resize 112 112 --shape 128 128), Dice on the LV."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .common import AdapterArgs, assign_splits, dataset_config, split_rule, to_nifti, write_outputs

LABELS = {0: "background", 1: "LV endocardium", 2: "LV myocardium", 3: "left atrium"}


def _one(folder: Path, stem: str) -> Path | None:
    for ext in (".nii.gz", ".nii", ".mhd"):
        if (folder / f"{stem}{ext}").exists():
            return folder / f"{stem}{ext}"
    return None


@ADAPTERS.register("camus")
def build(args: AdapterArgs) -> dict:
    view = str(args.options.get("view") or "2CH").upper()
    if view not in ("2CH", "4CH"):
        raise InputError(f"--view {view}: choose 2CH or 4CH")
    if args.root is None or not args.root.is_dir():
        raise InputError(f"{args.root}: --root must be the CAMUS folder of patientXXXX folders")
    base = args.root / "training" if (args.root / "training").is_dir() else args.root
    found = {}
    for p in sorted(base.glob("patient*")):
        if not p.is_dir():
            continue
        files = {}
        for phase in ("ED", "ES"):
            img, gt = _one(p, f"{p.name}_{view}_{phase}"), _one(p, f"{p.name}_{view}_{phase}_gt")
            if img is None or gt is None:
                raise InputError(f"{p}: {p.name}_{view}_{phase} image or _gt missing")
            files[phase] = (img, gt)
        found[p.name] = files
    if not found:
        raise InputError(f"{base}: no patientXXXX folders")
    conf = dataset_config("camus", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
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
    out = write_outputs(pd.DataFrame(rows), args, conf, LABELS)
    out["split_scheme"] = scheme
    return out
