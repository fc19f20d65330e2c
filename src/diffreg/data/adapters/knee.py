"""Knee DXA and X-ray (DGIR's 2D multimodal task), from a user CSV.

CSV columns: ``subject``, ``modality`` (dxa or xray), ``image`` (NIfTI or PNG/JPEG/TIFF),
``labels`` (bone label map: 0 background, 1 femur, 2 tibia, 3 fibula; same format), optional
``split``. DXA and X-ray come from different people (UK Biobank, OAI), so each row holds one
image: the samplesheet has ``image_dxa`` and ``image_xray`` columns, one of them empty per row.
Test pairs: every DXA -> every X-ray of the test split (25 x 100 in the paper)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .common import AdapterArgs, assign_splits, dataset_config, resolve_against, split_rule, to_nifti, write_outputs

LABELS = {0: "background", 1: "femur", 2: "tibia", 3: "fibula"}
MODALITIES = ("dxa", "xray")


@ADAPTERS.register("knee")
def build(args: AdapterArgs) -> dict:
    if args.csv is None or not Path(args.csv).exists():
        raise InputError(f"{args.csv}: --csv must name the images' CSV (subject, modality, image, labels[, split])")
    table = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    missing = [c for c in ("subject", "modality", "image", "labels") if c not in table.columns]
    if missing:
        raise InputError(f"{args.csv}: missing column(s) {', '.join(missing)}")
    table["modality"] = table["modality"].str.strip().str.lower()
    bad = sorted(set(table["modality"]) - set(MODALITIES))
    if bad:
        raise InputError(f"{args.csv}: modality values {bad} (allowed: dxa, xray)")
    base = Path(args.csv).resolve().parent
    conf = dataset_config("knee", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    given = dict(zip(table["subject"], table["split"].str.lower())) if "split" in table.columns else None
    if given is not None:
        rule = {"from": "given"}
    split = {}
    for m in MODALITIES:  # counts apply per modality (the paper: 98 + 758 train, 25 + 100 test)
        ids = list(table.loc[table["modality"] == m, "subject"])
        split.update(assign_splits(ids, rule.get(m, rule) if given is None else rule, given=given))
    rows = []
    for _, r in table.iterrows():
        sid = r["subject"]
        if sid not in split:
            continue
        resolve = lambda v: resolve_against(base, v)  # noqa: E731
        for col in ("image", "labels"):
            if r[col] and not resolve(r[col]).exists():
                raise InputError(f"{args.csv}: {sid}: {col} file not found: {resolve(r[col])}")
        # labels in their own folder: images/<x>.png and masks/<x>.png would both become <x>.nii.gz
        row = {"subject": sid, "split": split[sid], "image_dxa": "", "image_xray": "",
               "labels": to_nifti(resolve(r["labels"]), args.workdir / sid / "labels", label=True) if r["labels"] else ""}
        row[f"image_{r['modality']}"] = to_nifti(resolve(r["image"]), args.workdir / sid)
        rows.append(row)
    out = write_outputs(pd.DataFrame(rows), args, conf, LABELS)
    out["split_scheme"] = scheme
    return out
