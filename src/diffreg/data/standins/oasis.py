"""``oasis``: the brain population of ``brain`` with finer labels (structures.py): lateral
ventricles and deep grey matter, left and right, split out of CSF and grey matter.

Every file but the label maps and ``labels.json`` is byte-identical to ``brain`` for the same
options; merging the new values back (4, 5 -> 1; 6, 7 -> 2) gives ``brain``'s label maps exactly,
because the fine map is made once on the template and moved by the same nearest-neighbour warp.
A stand-in for the structure-wise Dice of OASIS (DiffuseMorph Fig. 10, Neurite-OASIS seg35):
the structures listed in structures.NAMES exist, the others (thalamus vs. caudate vs. putamen,
hippocampus, third ventricle, brainstem, cerebellum) do not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import deform, toy
from ..toy import ToyConfig, template_for
from . import StandIn, Writer, register
from .structures import NAMES, fine_labels


def subject_displacement(tpl, rng: np.random.Generator, cfg: ToyConfig) -> np.ndarray:
    """The displacement toy.make_subject draws first from a fresh `rng` (same calls, same order):
    its subject's images are the template warped by it (tests/unit/test_standins_brain.py)."""
    shape = tpl.shape
    side = max(shape)
    v = deform.random_velocity(shape, rng, cfg.smoothness * side, cfg.velocity_std * side)
    u = deform.integrate_velocity(v)
    if cfg.affine:
        a, t = deform.random_affine(len(shape), rng, cfg.max_rotation_deg, cfg.max_scale, cfg.max_shift * side)
        u = deform.compose_affine_after(u, a, t)
    return u


def template_fine_labels(tpl) -> np.ndarray:
    return fine_labels(np.argmax(tpl.tissues(), axis=0), tpl.affine)


def generate(outdir: str | Path, cfg: ToyConfig, absolute_paths: bool = False) -> pd.DataFrame:
    df = toy.generate(outdir, cfg, absolute_paths)
    tpl = template_for(cfg.size, cfg.ndim)
    fine = template_fine_labels(tpl)
    out = Writer(outdir, absolute_paths)
    out.labels("template_labels.nii.gz", fine, tpl.affine)
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.n_subjects)
    for ss, (_, row) in zip(seeds, df.iterrows()):
        u = subject_displacement(tpl, np.random.default_rng(ss), cfg)
        out.labels(Path(row["labels"]).name, deform.warp(fine, u, order=0), tpl.affine)
    return out.finish(df.to_dict("records"), NAMES)


register(StandIn("oasis", ToyConfig, generate, "neurite-oasis",
                 "the brain population with lateral ventricles and deep grey matter (left/right) split out"))
