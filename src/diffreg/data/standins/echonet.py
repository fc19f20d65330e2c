"""``echonet``: EchoNet-Dynamic stand-in, apical four-chamber B-mode-like cine loops (echo.py)
of the beating-heart phantom with left-ventricle masks at ED and ES.

Per subject (an EchoNet-like file name ``0X...``): ``Videos/<id>.avi`` (the whole cycle,
ED -> ES -> ED, `n_frames` frames, Motion-JPEG, rows top to bottom as in EchoNet), and what the
real adapter writes after reading the video and the tracings: ``<id>_{ed,es}.nii.gz``,
``<id>_{ed,es}_gt.nii.gz`` (1 = left ventricle), plus ``<id>_es_disp.nii.gz`` (the true
displacement, ES(x) = ED(x + u(x)), voxel units). ``FileList.csv`` gives EchoNet's columns
(FileName, EF, ESV, EDV, FrameHeight, FrameWidth, FPS, NumberOfFrames, Split) with the phantom's
areas-based EF. No ``VolumeTracings.csv``: the masks are given directly (the phantom's own).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..adapters.avi import write_avi_mjpeg
from ..toy import splits
from . import StandIn, Writer, check_common, register, subject_rngs
from . import heart as H
from .echo import EchoConfig, EchoRenderer, apical_heart, geometry

LABELS = {0: "background", 1: "left ventricle"}


@dataclass
class EchonetConfig(EchoConfig):
    n_frames: int = 16      # one cycle, ED -> ES -> ED; ES is frame n_frames / 2


def generate(outdir: str | Path, cfg: EchonetConfig, absolute_paths: bool = False) -> pd.DataFrame:
    check_common(cfg, 32, 512)
    if cfg.n_frames < 4 or cfg.n_frames % 2:
        raise InputError(f"--n-frames {cfg.n_frames}: an even number >= 4 (ES is the middle frame)")
    out = Writer(outdir, absolute_paths)
    (out.outdir / "Videos").mkdir(exist_ok=True)
    rows, listing = [], []
    es_k = cfg.n_frames // 2
    for i, (rng, sp) in enumerate(zip(subject_rngs(cfg.seed, cfg.n_subjects), splits(cfg.n_subjects)), start=1):
        vid = f"0X{i:016X}"
        hrt = apical_heart(rng, geometry(cfg.size)[2], "4CH")
        ren = EchoRenderer(hrt, cfg.size, rng)
        video, f, area = [], {}, {}
        for k in range(cfg.n_frames):
            s = 0.5 * (1.0 - np.cos(2 * np.pi * k / cfg.n_frames))
            img, frac, u = ren.frame(s)
            video.append(np.rint(img.T[::-1] * 255).astype(np.uint8))  # rows top to bottom
            if k in (0, es_k):
                phase = "ed" if k == 0 else "es"
                lv = H.labels_from(frac, {H.LV: 1}) * ren.mask
                area[phase] = int(lv.sum())
                f[phase] = (out.image(f"{vid}_{phase}.nii.gz", img, ren.aff), out.labels(f"{vid}_{phase}_gt.nii.gz", lv, ren.aff))
                if k:
                    out.field(f"{vid}_{phase}_disp.nii.gz", u, ren.aff)
        write_avi_mjpeg(out.outdir / "Videos" / f"{vid}.avi", np.stack(video), fps=50)
        rows.append({"subject": vid, "split": sp, "image_ed": f["ed"][0], "image_es": f["es"][0],
                     "labels_ed": f["ed"][1], "labels_es": f["es"][1], "prealigned": "true"})
        ef = 100.0 * (1.0 - (area["es"] / area["ed"]) ** 1.5)  # area -> volume (a sphere's power law)
        listing.append({"FileName": vid, "EF": round(ef, 2), "ESV": "", "EDV": "", "FrameHeight": cfg.size,
                        "FrameWidth": cfg.size, "FPS": 50, "NumberOfFrames": cfg.n_frames, "Split": sp.upper()})
    out.csv("FileList.csv", pd.DataFrame(listing))
    return out.finish(rows, LABELS)


register(StandIn("echonet", EchonetConfig, generate, "echonet",
                 "apical 4CH B-mode-like cine loops of the heart phantom, LV masks at ED/ES", ndims=(2,), pairing="intra"))
