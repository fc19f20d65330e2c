"""``camus``: CAMUS stand-in, 2D apical two- or four-chamber B-mode-like views (echo.py) of the
beating-heart phantom at ED and ES.

Per subject ``patientXXXX`` (view V = 2CH or 4CH, one view per dataset as the real adapter):
``patientXXXX_V_{ED,ES}.nii.gz`` (image), ``..._gt.nii.gz`` (CAMUS labels: 1 LV endocardium
(cavity), 2 LV myocardium, 3 left atrium; zero outside the sector) and
``patientXXXX_V_ES_disp.nii.gz``, the true displacement ES(x) = ED(x + u(x)) in voxel units.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ...errors import InputError
from ..toy import splits
from . import StandIn, Writer, check_common, register, subject_rngs
from . import heart as H
from .echo import EchoConfig, EchoRenderer, apical_heart, geometry

LABELS = {0: "background", 1: "LV endocardium", 2: "LV myocardium", 3: "left atrium"}
TO_CAMUS = {H.LV: 1, H.MYO: 2, H.LA: 3}


@dataclass
class CamusConfig(EchoConfig):
    view: str = "2CH"


def generate(outdir: str | Path, cfg: CamusConfig, absolute_paths: bool = False) -> pd.DataFrame:
    check_common(cfg, 32, 512)
    view = str(cfg.view).upper()
    if view not in ("2CH", "4CH"):
        raise InputError(f"--view {cfg.view}: choose 2CH or 4CH")
    out = Writer(outdir, absolute_paths)
    rows = []
    for i, (rng, sp) in enumerate(zip(subject_rngs(cfg.seed, cfg.n_subjects), splits(cfg.n_subjects)), start=1):
        pid = f"patient{i:04d}"
        hrt = apical_heart(rng, geometry(cfg.size)[2], view)
        ren = EchoRenderer(hrt, cfg.size, rng)
        f = {}
        for phase, s in (("ED", 0.0), ("ES", 1.0)):
            img, frac, u = ren.frame(s)
            stem = f"{pid}_{view}_{phase}"
            f[phase] = (out.image(f"{stem}.nii.gz", img, ren.aff),
                        out.labels(f"{stem}_gt.nii.gz", H.labels_from(frac, TO_CAMUS) * ren.mask, ren.aff))
            if s:
                out.field(f"{stem}_disp.nii.gz", u, ren.aff)
        rows.append({"subject": f"{pid}_{view}", "split": sp, "image_ed": f["ED"][0], "image_es": f["ES"][0],
                     "labels_ed": f["ED"][1], "labels_es": f["ES"][1], "prealigned": "true"})
    return out.finish(rows, LABELS)


register(StandIn("camus", CamusConfig, generate, "camus",
                 "apical 2CH/4CH B-mode-like views of the heart phantom, ED/ES, CAMUS labels", ndims=(2,), pairing="intra"))
