"""Registration pairs from a samplesheet.

Schemes (the papers' pairings are declared in ``experiments/pairs/*.yaml``, not here):

- ``all_ordered``  every ordered pair of distinct subjects of the split (DGIR OASIS: 114 x 113;
                   with different modalities and disjoint rows, e.g. DXA -> X-ray, 25 x 100)
- ``consecutive``  subject k -> subject k+1 in samplesheet order (a cheap subset)
- ``atlas``        every subject of the split -> one atlas (a subject, or an image given by path)
- ``intra``        within each subject, moving modality -> fixed modality (ACDC ED -> ES)
- ``random``       `n_pairs` ordered pairs of distinct subjects drawn with `seed`

Output columns: pair_id, moving_subject, fixed_subject, moving_image, fixed_image, moving_labels,
fixed_labels, moving_modality, fixed_modality, split.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..yaml_text import parse_yaml
from .samplesheet import SPLITS, labels_column, modalities

SCHEMES = ("all_ordered", "consecutive", "atlas", "intra", "random")
PAIR_COLUMNS = ["pair_id", "moving_subject", "fixed_subject", "moving_image", "fixed_image",
                "moving_labels", "fixed_labels", "moving_modality", "fixed_modality", "split"]


@dataclass
class PairSpec:
    scheme: str = "all_ordered"
    split: str = "test"
    moving_modality: str = "be"
    fixed_modality: str = "be"
    atlas_subject: str | None = None
    atlas_image: str | None = None
    atlas_labels: str | None = None
    n_pairs: int | None = None
    seed: int = 0
    max_pairs: int | None = None   # keep the first N pairs (after the scheme's order)
    extra: dict = field(default_factory=dict)


def load_pairing(config: str | Path, name: str | None) -> dict:
    """Read one pairing from an experiments/pairs YAML file (``pairings: {name: {...}}``)."""
    config = Path(config)
    if not config.exists():
        raise InputError(f"{config}: pairing file not found")
    doc = parse_yaml(config.read_text()) or {}
    pairings = doc.get("pairings") or {}
    if not pairings:
        raise InputError(f"{config}: no 'pairings' section")
    if name is None:
        if len(pairings) != 1:
            raise InputError(f"{config}: several pairings ({', '.join(pairings)}); choose one with --pairing")
        name = next(iter(pairings))
    if name not in pairings:
        raise InputError(f"{config}: no pairing '{name}' (have {', '.join(pairings)})")
    return dict(pairings[name])


def _rows(df: pd.DataFrame, split: str, modality: str) -> pd.DataFrame:
    col = f"image_{modality}"
    if col not in df.columns:
        raise InputError(f"samplesheet: no column {col} (modalities: {', '.join(modalities(df))})")
    sel = df[(df["split"] == split) & (df[col].astype(str).str.len() > 0)]
    return sel


def _entry(row: pd.Series, df: pd.DataFrame, modality: str) -> tuple[str, str, str]:
    lab = labels_column(df, modality)
    labels = str(row[lab]) if lab and isinstance(row.get(lab), str) else ""
    return str(row["subject"]), str(row[f"image_{modality}"]), labels


def make_pairs(df: pd.DataFrame, spec: PairSpec) -> pd.DataFrame:
    """Build the pairs table for `spec` from a samplesheet loaded by `load_samplesheet`."""
    if spec.scheme not in SCHEMES:
        raise InputError(f"--scheme {spec.scheme}: unknown (choose from {', '.join(SCHEMES)})")
    if spec.split not in SPLITS:
        raise InputError(f"--split {spec.split}: not one of {', '.join(SPLITS)}")
    mov = _rows(df, spec.split, spec.moving_modality)
    fix = _rows(df, spec.split, spec.fixed_modality)
    pairs: list[tuple[tuple[str, str, str], tuple[str, str, str]]] = []
    m_entries = [_entry(r, df, spec.moving_modality) for _, r in mov.iterrows()]
    f_entries = [_entry(r, df, spec.fixed_modality) for _, r in fix.iterrows()]

    if spec.scheme == "all_ordered":
        pairs = [(m, f) for m in m_entries for f in f_entries if m[0] != f[0]]
    elif spec.scheme == "consecutive":
        f_by = {f[0]: f for f in f_entries}
        order = [m for m in m_entries if m[0] in f_by]
        pairs = [(a, f_by[b[0]]) for a, b in zip(order, order[1:])]
    elif spec.scheme == "intra":
        f_by = {f[0]: f for f in f_entries}
        pairs = [(m, f_by[m[0]]) for m in m_entries if m[0] in f_by]
    elif spec.scheme == "random":
        cand = [(m, f) for m in m_entries for f in f_entries if m[0] != f[0]]
        n = spec.n_pairs or len(cand)
        if n > len(cand):
            raise InputError(f"--n-pairs {n}: only {len(cand)} distinct ordered pairs in split {spec.split}")
        idx = np.sort(np.random.default_rng(spec.seed).choice(len(cand), size=n, replace=False))
        pairs = [cand[i] for i in idx]
    elif spec.scheme == "atlas":
        if spec.atlas_image:
            atlas = ("atlas", str(Path(spec.atlas_image).resolve()),
                     str(Path(spec.atlas_labels).resolve()) if spec.atlas_labels else "")
            for p in (spec.atlas_image, spec.atlas_labels):
                if p and not Path(p).exists():
                    raise InputError(f"{p}: atlas file not found")
        else:
            sid = spec.atlas_subject
            if sid is None:
                train = df[df["split"] == "train"]
                if train.empty:
                    raise InputError("atlas scheme: no --atlas-subject/--atlas-image and no train subject to use")
                # the first by id: the atlas TRAIN uses too (`diffreg train --atlas-subject first`)
                sid = sorted(str(s) for s in train["subject"])[0]
            hit = df[df["subject"] == sid]
            if hit.empty:
                raise InputError(f"--atlas-subject {sid}: not in the samplesheet")
            atlas = _entry(hit.iloc[0], df, spec.fixed_modality)
        pairs = [(m, atlas) for m in m_entries if m[0] != atlas[0]]

    if spec.max_pairs is not None:
        pairs = pairs[: spec.max_pairs]
    if not pairs:
        raise InputError(f"no pairs: scheme {spec.scheme}, split {spec.split}, "
                         f"{spec.moving_modality} -> {spec.fixed_modality} "
                         f"({len(m_entries)} moving and {len(f_entries)} fixed candidates)")
    rows = []
    for (ms, mi, ml), (fs, fi, fl) in pairs:
        rows.append({
            "pair_id": f"{ms}_{spec.moving_modality}__{fs}_{spec.fixed_modality}",
            "moving_subject": ms, "fixed_subject": fs, "moving_image": mi, "fixed_image": fi,
            "moving_labels": ml, "fixed_labels": fl,
            "moving_modality": spec.moving_modality, "fixed_modality": spec.fixed_modality,
            "split": spec.split,
        })
    out = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    if out["pair_id"].duplicated().any():
        raise InputError("duplicate pairs (a subject listed twice?)")
    return out
