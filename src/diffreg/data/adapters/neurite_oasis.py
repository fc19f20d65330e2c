"""Neurite-OASIS (the Learn2Reg / neurite release of OASIS-1): 414 subjects affinely aligned to
FreeSurfer's Talairach space, 160x192x224.

Layout: <root>/OASIS_OAS1_XXXX_MR1/aligned_norm.nii.gz (brain-extracted),
aligned_orig.nii.gz (not brain-extracted), aligned_seg4.nii.gz, aligned_seg35.nii.gz.
Modalities: ``be`` = aligned_norm, ``nbe`` = aligned_orig (the names the toy data use).
DGIR: BE moving -> NBE fixed, and BE -> BE; test pairs = all ordered pairs of the test split."""
from __future__ import annotations

import re

import pandas as pd

from ...errors import InputError
from . import ADAPTERS
from .common import AdapterArgs, Skipped, assign_splits, dataset_config, split_rule, write_outputs

SUBJECT = re.compile(r"OASIS_OAS1_\d{4}_MR1")
SEG4 = {0: "background", 1: "cortex", 2: "subcortical grey matter", 3: "white matter", 4: "CSF"}


def label_names(root, seg: str) -> dict[int, str]:
    """Names from the release's <seg>_labels.txt ('<value> <name>' lines) when present."""
    if seg == "seg4":
        return SEG4
    names = {0: "background", **{i: f"label {i}" for i in range(1, 36)}}
    txt = root / f"{seg}_labels.txt"
    if txt.exists():
        for line in txt.read_text().splitlines():
            parts = line.replace(",", " ").split(None, 1)
            if len(parts) == 2 and parts[0].isdigit():
                names[int(parts[0])] = parts[1].strip()
    return names


@ADAPTERS.register("neurite-oasis")
def build(args: AdapterArgs) -> dict:
    if args.root is None or not args.root.is_dir():
        raise InputError(f"{args.root}: --root must be the folder holding OASIS_OAS1_*_MR1 folders")
    seg = args.options.get("seg", "seg4")
    if seg not in ("seg4", "seg35"):
        raise InputError(f"--seg {seg}: choose seg4 or seg35")
    skipped = Skipped()
    subs = []
    for p in sorted(q for q in args.root.iterdir() if q.is_dir() and q.name.startswith("OASIS_OAS1_")):
        if SUBJECT.fullmatch(p.name):
            subs.append(p)
        else:  # e.g. a copy such as OASIS_OAS1_0001_MR1_backup
            skipped.add(str(p), "folder name is not OASIS_OAS1_NNNN_MR1")
    conf = dataset_config("neurite-oasis", args.config)
    scheme, rule = split_rule(conf, args.split_scheme)
    split = assign_splits([p.name for p in subs], rule)
    rows = []
    for p in subs:
        if p.name not in split:
            continue
        files = {k: p / f"aligned_{k}.nii.gz" for k in ("norm", "orig", seg)}
        for k, f in files.items():
            if not f.exists():
                raise InputError(f"{f}: missing (expected aligned_{k}.nii.gz in every subject folder)")
        rows.append({"subject": p.name, "split": split[p.name], "labels": str(files[seg]),
                     "image_be": str(files["norm"]), "image_nbe": str(files["orig"]), "prealigned": "true"})
    out = write_outputs(pd.DataFrame(rows), args, conf, label_names(args.root, seg), skipped)
    out["split_scheme"] = scheme
    return out
