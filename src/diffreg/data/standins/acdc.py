"""``acdc``: cardiac cine MR stand-in (ACDC), a beating-heart phantom per subject (heart.py).

Per subject ``patientXXX`` (frames 01 = ED ... NN = ES, `n_frames` in all):
- ``patientXXX_frameNN.nii.gz``       bSSFP-like image (blood bright, myocardium dark, fat bright,
                                      lung dark), coil bias (static), Rician noise (fresh per frame)
- ``patientXXX_frameNN_gt.nii.gz``    ACDC labels: 1 RV cavity, 2 LV myocardium, 3 LV cavity
- ``patientXXX_frameNN_disp.nii.gz``  (NN > 01) the true displacement: frame(x) = ED(x + u(x)),
                                      voxel units, (X, Y, Z, 3) (diffreg.io.write_field)
``samplesheet.csv`` has the ACDC adapter's columns (image_ed, image_es, labels_ed, labels_es) and
the intermediate frames as modalities ``image_mid1``, ``labels_mid1`` .. (frame k + 1 is ``mid<k>``,
time k / (n - 1));
``frames.csv`` lists every frame with its phase and files (DiffuseMorph's continuous deformation).
3D: a short-axis stack, `size` x `size` x `slices` at (144/size) x (144/size) x 10 mm (1.5 x 1.5 x
10 at the default size 96). 2D: the mid-ventricular slice, in-plane motion only (no through-plane
descent, no tilt), so that the 2D displacement is the whole truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from .. import deform
from ..toy import splits
from . import StandIn, Writer, check_common, register, subject_rngs
from . import heart as H

LABELS = {0: "background", 1: "right ventricle", 2: "myocardium", 3: "left ventricle"}
TO_ACDC = {H.RV: 1, H.MYO: 2, H.LV: 3}
FOV_MM = 144.0
SLICE_MM = 10.0
# bSSFP-like tissue intensities (before bias and noise)
MR_VALUES = {H.BODY: 0.32, H.LV: 0.9, H.MYO: 0.2, H.RV: 0.88, H.RV_WALL: 0.22, H.LA: 0.86, H.FAT: 0.78,
             H.LUNG: 0.03}


@dataclass
class AcdcConfig:
    n_subjects: int = 8
    size: int = 96          # in-plane voxels a side (FOV 144 mm)
    ndim: int = 3
    seed: int = 0
    slices: int = 10        # short-axis slices (10 mm each), 3D only
    n_frames: int = 5       # ED, intermediates, ES
    noise_std: float = 0.025
    bias_strength: float = 0.15


def geometry(cfg: AcdcConfig) -> tuple[np.ndarray, tuple[int, ...]]:
    sp = FOV_MM / cfg.size
    if cfg.ndim == 3:
        shape = (cfg.size, cfg.size, cfg.slices)
        aff = np.diag([sp, sp, SLICE_MM, 1.0])
        aff[:3, 3] = -np.array([sp * (cfg.size - 1), sp * (cfg.size - 1), SLICE_MM * (cfg.slices - 1)]) / 2
    else:
        shape = (cfg.size, cfg.size)
        aff = np.diag([sp, sp, SLICE_MM, 1.0])
        aff[:2, 3] = -sp * (cfg.size - 1) / 2
    return aff, shape


def subject_heart(rng: np.random.Generator, ndim: int) -> H.Heart:
    # long axis along +z (through-plane), RV towards -x; tilted a little in 3D
    tilt = rng.uniform(-8, 8, 2) if ndim == 3 else np.zeros(2)
    spin = rng.uniform(-15, 15)
    axes = H.rotation([tilt[0], tilt[1], spin])
    hrt = H.random_heart(rng, np.zeros(3), axes, twist=True)
    hrt.rv_angle = np.pi + rng.uniform(-0.3, 0.3)
    if ndim == 2:
        hrt.long_mm = 0.0  # in-plane motion only: the mid-slice keeps its tissue
    shift = np.append(rng.uniform(-6, 6, 2), 0.0)
    # the stack (or the slice) is centred at l = 0.55 Lb
    hrt.apex = shift - axes[:, 2] * 0.55 * hrt.base
    return hrt


def render(hrt: H.Heart, aff: np.ndarray, shape: tuple[int, ...], s: float) -> np.ndarray:
    sub = (2, 2, 5) if len(shape) == 3 else (3, 3)
    return H.class_fractions(hrt, aff, shape, sub, s)


def mr_image(frac: np.ndarray, values: dict[int, float], texture: np.ndarray, bias: np.ndarray,
             rng: np.random.Generator, noise_std: float) -> np.ndarray:
    img = sum(values[k] * frac[k] for k in range(H.N_CLASSES))
    img = img * (1.0 + texture) * bias
    n = noise_std * rng.standard_normal((2, *img.shape))
    return np.sqrt((img + n[0]) ** 2 + n[1] ** 2)


def generate(outdir: str | Path, cfg: AcdcConfig, absolute_paths: bool = False) -> pd.DataFrame:
    check_common(cfg)
    if cfg.n_frames < 2:
        raise InputError(f"--n-frames {cfg.n_frames}: need at least ED and ES (2)")
    if cfg.ndim == 3 and not 4 <= cfg.slices <= 20:
        raise InputError(f"--slices {cfg.slices}: must be between 4 and 20")
    split = splits(cfg.n_subjects)
    out = Writer(outdir, absolute_paths)
    aff, shape = geometry(cfg)
    rows, frames = [], []
    for i, (rng, sp) in enumerate(zip(subject_rngs(cfg.seed, cfg.n_subjects), split), start=1):
        sid = f"patient{i:03d}"
        hrt = subject_heart(rng, cfg.ndim)
        values = {k: v * float(rng.uniform(0.9, 1.1)) for k, v in MR_VALUES.items()}
        texture = 0.06 * deform.smooth_noise(shape, rng, 2.0, 1)[0]
        bias = deform.bias_field(shape, rng, cfg.bias_strength)
        files = {}
        scale = None
        for k in range(cfg.n_frames):
            s = H.phase(k, cfg.n_frames)
            frac = render(hrt, aff, shape, s)
            img = mr_image(frac, values, texture, bias, rng, cfg.noise_std)
            if scale is None:  # one intensity scale for all frames of the subject (that of ED)
                scale = float(np.percentile(img, 99.5))
            stem = f"{sid}_frame{k + 1:02d}"
            f_img = out.image(f"{stem}.nii.gz", img / scale, aff)
            f_lab = out.labels(f"{stem}_gt.nii.gz", H.labels_from(frac, TO_ACDC), aff)
            f_disp = out.field(f"{stem}_disp.nii.gz", H.displacement_voxels(hrt, aff, shape, s), aff) if k else ""
            files[k] = (f_img, f_lab)
            frames.append({"subject": sid, "frame": k + 1, "phase": round(s, 4),
                           "role": "ed" if k == 0 else ("es" if k == cfg.n_frames - 1 else "mid"),
                           "image": f_img, "labels": f_lab, "disp": f_disp})
        es = cfg.n_frames - 1
        # the intermediate frames as modalities mid1 .. mid<n-2> (frame k at time k / (n - 1) of
        # the cine, as a real cine's frames are): the references of DiffuseMorph's continuous
        # deformation, preprocessed with ED and ES
        mids = {f"image_mid{k}": files[k][0] for k in range(1, es)}
        mid_labels = {f"labels_mid{k}": files[k][1] for k in range(1, es)}
        rows.append({"subject": sid, "split": sp, "image_ed": files[0][0], "image_es": files[es][0], **mids,
                     "labels_ed": files[0][1], "labels_es": files[es][1], **mid_labels, "prealigned": "true"})
    out.csv("frames.csv", pd.DataFrame(frames))
    return out.finish(rows, LABELS)


register(StandIn("acdc", AcdcConfig, generate, "acdc",
                 "cardiac cine MR phantom: ED -> ES frames with true displacements, ACDC labels", pairing="intra"))
