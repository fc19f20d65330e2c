"""ADNI-style multimodal brain data for M2M-Reg (PET-MRI, FA-MRI), from a user CSV.

CSV columns: ``subject``, ``t1``, and ``pet`` and/or ``fa``, ``aseg`` (FreeSurfer label map on
the T1 grid, e.g. aparc+aseg or aseg), optional ``split``. The pairs are rigidly co-registered
per subject (prealigned). FreeSurfer labels are merged into M2M-Reg's 11 evaluation groups
(`GROUPS`; unlisted structures become background) and written next to the samplesheet."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .common import (AdapterArgs, assign_splits, dataset_config, resolve_against, save_nifti, split_rule,
                     to_nifti, write_outputs)

# group value: (name, FreeSurfer aseg labels, left and right)
GROUPS = {
    1: ("cerebral white matter", (2, 41)),
    2: ("cerebral cortex", (3, 42)),
    3: ("ventricles", (4, 5, 14, 15, 43, 44)),
    4: ("cerebellar white matter", (7, 46)),
    5: ("cerebellar cortex", (8, 47)),
    6: ("thalamus", (10, 49)),
    7: ("caudate and accumbens", (11, 50, 26, 58)),
    8: ("putamen", (12, 51)),
    9: ("brainstem", (16,)),
    10: ("hippocampus", (17, 53)),
    11: ("amygdala", (18, 54)),
}
LABELS = {0: "background", **{k: v[0] for k, v in GROUPS.items()}}


def merge_freesurfer(aseg: np.ndarray) -> np.ndarray:
    """FreeSurfer labels -> the 11 groups. aparc+aseg cortical parcels (1000-1035, 2000-2035) count
    as cerebral cortex."""
    lut = np.zeros(max(int(aseg.max()) + 1, 2036), dtype=np.uint8)
    for g, (_, fs) in GROUPS.items():
        lut[list(fs)] = g
    lut[1000:1036] = lut[2000:2036] = 2
    a = aseg.astype(np.int64)
    if a.min() < 0:
        raise InputError("FreeSurfer label map has negative values")
    return lut[a]


@ADAPTERS.register("adni")
def build(args: AdapterArgs) -> dict:
    import nibabel as nib

    if args.csv is None or not Path(args.csv).exists():
        raise InputError(f"{args.csv}: --csv must name the subjects' CSV (subject, t1, pet/fa, aseg[, split])")
    table = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    mods = [m for m in ("t1", "pet", "fa") if m in table.columns]
    missing = [c for c in ("subject", "t1", "aseg") if c not in table.columns]
    if missing or len(mods) < 2:
        raise InputError(f"{args.csv}: needs columns subject, t1, aseg and pet and/or fa "
                         f"(missing: {', '.join(missing) or 'pet/fa'})")
    base = Path(args.csv).resolve().parent
    conf = dataset_config("adni", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    given = dict(zip(table["subject"], table["split"].str.lower())) if "split" in table.columns else None
    if given is not None and rule.get("from") != "given":
        rule = {"from": "given"}  # the user's own split wins when the CSV has one
    split = assign_splits(list(table["subject"]), rule, given=given)
    rows = []
    for _, r in table.iterrows():
        sid = r["subject"]
        if sid not in split:
            continue
        resolve = lambda v: resolve_against(base, v)  # noqa: E731
        aseg_path = resolve(r["aseg"])
        if not aseg_path.exists():
            raise InputError(f"{args.csv}: {sid}: aseg file not found: {aseg_path}")
        img = nib.load(str(aseg_path))
        merged = merge_freesurfer(np.asarray(img.dataobj))
        row = {"subject": sid, "split": split[sid],
               "labels": save_nifti(args.workdir / sid / f"{sid}_labels11.nii.gz", merged, img.affine)}
        for m in mods:
            row[f"image_{m}"] = to_nifti(resolve(r[m]), args.workdir / sid) if r[m] else ""
        row["prealigned"] = "true"
        rows.append(row)
    out = write_outputs(pd.DataFrame(rows), args, conf, LABELS)
    out["split_scheme"] = scheme
    return out
