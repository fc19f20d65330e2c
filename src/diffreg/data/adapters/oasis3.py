"""OASIS-3 for DiffuseMorph's atlas-based registration: FreeSurfer-processed T1 scans
(brain-extracted, affinely normalised), each subject -> one atlas.

Layout: <root>/<session>/ with brain.{mgz,nii.gz} (or norm.*) and aseg.{mgz,nii.gz}, directly or
under mri/ (FreeSurfer's own layout, e.g. OAS30001_MR_d0129/mri/brain.mgz). MGZ files are
converted to NIfTI next to the samplesheet. The atlas (fixed image) is given with --atlas-image and
--atlas-labels, or is the first train subject."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .common import AdapterArgs, assign_splits, dataset_config, split_rule, to_nifti, write_outputs


def _find(folder: Path, stems: tuple[str, ...]) -> Path | None:
    for sub in (folder, folder / "mri"):
        for s in stems:
            for ext in (".nii.gz", ".nii", ".mgz"):
                if (sub / f"{s}{ext}").exists():
                    return sub / f"{s}{ext}"
    return None


@ADAPTERS.register("oasis3")
def build(args: AdapterArgs) -> dict:
    if args.root is None or not args.root.is_dir():
        raise InputError(f"{args.root}: --root must be the folder of OASIS-3 FreeSurfer sessions")
    sessions = sorted(p for p in args.root.iterdir() if p.is_dir())
    found = {}
    for s in sessions:
        img, seg = _find(s, ("brain", "norm")), _find(s, ("aseg",))
        if img is None and seg is None:
            continue
        if img is None or seg is None:
            raise InputError(f"{s}: needs both brain (or norm) and aseg images")
        found[s.name] = (img, seg)
    conf = dataset_config("oasis3", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    split = assign_splits(list(found), rule)
    rows = []
    for sid, (img, seg) in found.items():
        if sid not in split:
            continue
        rows.append({"subject": sid, "split": split[sid],
                     "labels": to_nifti(seg, args.workdir / sid, label=True),
                     "image_t1": to_nifti(img, args.workdir / sid), "prealigned": "true"})
    atlas_img, atlas_lab = args.options.get("atlas_image"), args.options.get("atlas_labels")
    if atlas_img:
        for name, spec in (conf.get("pairings") or {}).items():
            if spec.get("scheme") == "atlas":
                spec["atlas_image"], spec["atlas_labels"] = str(atlas_img), str(atlas_lab or "")
    out = write_outputs(pd.DataFrame(rows), args, conf)
    out["split_scheme"] = scheme
    return out
