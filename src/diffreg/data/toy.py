"""Embedded toy data: a population of synthetic heads made from real anatomy shipped in PyPI packages.

Every subject is the head template of `diffreg.data.anatomy` moved by its own random smooth
diffeomorphism (a stationary velocity field integrated by scaling and squaring) composed with a
small random affine, then given its own intensity changes (gamma, contrast, a smooth
multiplicative bias field, a little noise). Files per subject, all in [0, 1] except the labels:

- ``sub-XXX_nbe.nii.gz``    T1 with skull and scalp (non-brain-extracted)
- ``sub-XXX_be.nii.gz``     the same T1, brain-extracted
- ``sub-XXX_t2.nii.gz``     a second, brain-only contrast (another tissue -> intensity mapping:
                            CSF bright, white matter dark), for multimodal tasks
- ``sub-XXX_labels.nii.gz`` 0 background, 1 CSF/ventricles, 2 grey matter, 3 white matter

plus ``template_{nbe,be,t2,labels}.nii.gz`` (the undeformed template, a natural reference for
affine pre-alignment and atlas-based pairs), ``labels.json`` and ``samplesheet.csv``.
2D data are the axial slice through the lateral ventricles (MNI z = +18 mm), deformed in 2D.
The same seed gives byte-identical files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import atomic_path, write_image
from . import deform
from .anatomy import Template, build_template
from .samplesheet import write_samplesheet

LABELS = {0: "background", 1: "CSF/ventricles", 2: "grey matter", 3: "white matter"}
AXIAL_SLICE_MNI_Z = 18.0
# T2-like tissue intensities: CSF bright, GM middle, WM dark
T2_VALUES = {"csf": 1.0, "gm": 0.55, "wm": 0.3}


@dataclass
class ToyConfig:
    n_subjects: int = 8
    size: int = 48
    ndim: int = 3
    seed: int = 0
    velocity_std: float = 0.02      # std of the velocity, as a fraction of the image side
    smoothness: float = 0.12         # Gaussian sigma of the velocity, as a fraction of the side
    max_rotation_deg: float = 5.0
    max_scale: float = 0.05
    max_shift: float = 0.03          # fraction of the side
    bias_strength: float = 0.12
    noise_std: float = 0.01
    test_fraction: float = 0.25
    val_fraction: float = 0.125
    affine: bool = True              # False: subjects share the template's pose (prealigned)


def splits(n: int, test_fraction: float = 0.25, val_fraction: float = 0.125) -> list[str]:
    """Deterministic split by subject order: at least 2 test, val when n >= 5, the rest train
    (subjects are i.i.d. draws, so order carries no information)."""
    if n < 3:
        raise InputError(f"--n-subjects {n}: need at least 3 subjects (2 test, 1 train)")
    n_test = max(2, int(round(test_fraction * n)))
    n_val = max(1, int(round(val_fraction * n))) if n >= 5 else 0
    n_train = n - n_test - n_val
    if n_train < 1:
        raise InputError(f"--n-subjects {n}: too few subjects for the requested splits")
    return ["train"] * n_train + ["val"] * n_val + ["test"] * n_test


def template_for(size: int, ndim: int) -> Template:
    tpl = build_template(size)
    if ndim == 2:
        k = int(round((np.linalg.inv(tpl.affine) @ np.array([0.0, 0.0, AXIAL_SLICE_MNI_Z, 1.0]))[2]))
        tpl = tpl.slice(axis=2, index=k)
    return tpl


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return ((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)).astype(np.float32)


def _labels_from(tissues: np.ndarray) -> np.ndarray:
    return np.argmax(tissues, axis=0).astype(np.uint8)


def t2_contrast(csf: np.ndarray, gm: np.ndarray, wm: np.ndarray, t1: np.ndarray,
                values: dict[str, float] = T2_VALUES) -> np.ndarray:
    """Brain-only T2-like image from tissue fractions, with a little inverted-T1 texture so that
    it is not piecewise constant."""
    base = values["csf"] * csf + values["gm"] * gm + values["wm"] * wm
    brain = csf + gm + wm
    return base + 0.15 * brain * (1.0 - t1)


def _intensity(img: np.ndarray, rng: np.random.Generator, cfg: ToyConfig, mask: np.ndarray | None) -> np.ndarray:
    """Gamma, contrast, smooth bias and Rician-like noise; then min-max to [0, 1]."""
    gamma = float(np.exp(rng.normal(0.0, 0.12)))
    contrast = float(rng.uniform(0.9, 1.1))
    out = contrast * np.power(np.clip(img, 0, None), gamma)
    out = out * deform.bias_field(img.shape, rng, cfg.bias_strength)
    noise = cfg.noise_std * rng.standard_normal((2, *img.shape))
    out = np.sqrt((out + noise[0]) ** 2 + noise[1] ** 2)
    if mask is not None:
        out = out * mask
    return _minmax(out)


def make_subject(tpl: Template, rng: np.random.Generator, cfg: ToyConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One subject: images (nbe, be, t2), labels, and the displacement that made them."""
    shape = tpl.shape
    side = max(shape)
    v = deform.random_velocity(shape, rng, cfg.smoothness * side, cfg.velocity_std * side)
    u = deform.integrate_velocity(v)
    if cfg.affine:
        a, t = deform.random_affine(len(shape), rng, cfg.max_rotation_deg, cfg.max_scale, cfg.max_shift * side)
        u = deform.compose_affine_after(u, a, t)
    w = lambda arr: deform.warp(arr.astype(np.float64), u)  # noqa: E731
    tissues = np.stack([w(c) for c in tpl.tissues()])
    # nearest-neighbour labels keep thin CSF that an argmax of interpolated fractions would lose
    labels = deform.warp(_labels_from(tpl.tissues()), u, order=0)
    brain = np.clip(w(tpl.brain), 0, 1)
    nbe = _intensity(w(tpl.head), rng, cfg, None)
    be = (nbe * brain).astype(np.float32)
    be = _minmax(be)
    t2 = t2_contrast(tissues[1], tissues[2], tissues[3], w(tpl.t1))
    t2 = _intensity(t2, rng, cfg, brain)
    return {"nbe": nbe, "be": be, "t2": t2}, labels


def _template_images(tpl: Template) -> tuple[dict[str, np.ndarray], np.ndarray]:
    t2 = _minmax(t2_contrast(tpl.csf, tpl.gm, tpl.wm, tpl.t1) * tpl.brain)
    return ({"nbe": tpl.head, "be": _minmax(tpl.head * tpl.brain), "t2": t2},
            _labels_from(tpl.tissues()))


def generate(outdir: str | Path, cfg: ToyConfig, absolute_paths: bool = False) -> pd.DataFrame:
    """Write the population and its samplesheet into `outdir`; return the samplesheet."""
    if cfg.ndim not in (2, 3):
        raise InputError(f"--ndim {cfg.ndim}: must be 2 or 3")
    if not 16 <= cfg.size <= 256:
        raise InputError(f"--size {cfg.size}: must be between 16 and 256")
    split = splits(cfg.n_subjects, cfg.test_fraction, cfg.val_fraction)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tpl = template_for(cfg.size, cfg.ndim)
    aff = tpl.affine

    def save(name: str, arr: np.ndarray, is_label: bool = False) -> str:
        arr = arr.astype(np.uint8) if is_label else np.clip(arr, 0, 1).astype(np.float32)
        write_image(outdir / name, arr, aff)
        return str((outdir / name).resolve()) if absolute_paths else name

    images, labels = _template_images(tpl)
    for mod, arr in images.items():
        save(f"template_{mod}.nii.gz", arr)
    save("template_labels.nii.gz", labels, True)

    rows = []
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.n_subjects)
    for i, (ss, sp) in enumerate(zip(seeds, split), start=1):
        sid = f"sub-{i:03d}"
        images, labels = make_subject(tpl, np.random.default_rng(ss), cfg)
        row = {"subject": sid, "split": sp, "labels": save(f"{sid}_labels.nii.gz", labels, True)}
        for mod, arr in images.items():
            row[f"image_{mod}"] = save(f"{sid}_{mod}.nii.gz", arr)
        row["prealigned"] = "false" if cfg.affine else "true"
        rows.append(row)
    df = pd.DataFrame(rows)
    with atomic_path(outdir / "labels.json") as tmp:
        tmp.write_text(json.dumps({str(k): v for k, v in LABELS.items()}, indent=2) + "\n")
    write_samplesheet(df, outdir / "samplesheet.csv")
    return df
