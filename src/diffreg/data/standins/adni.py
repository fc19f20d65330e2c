"""``adni``: ADNI stand-in for M2M-Reg, the brain population as T1, PET-like and FA-like images.

Per subject ``sub-XXX`` (the same heads as ``brain``: its T1 is ``brain``'s ``be`` image):

- ``sub-XXX_t1.nii.gz``         brain-extracted T1 (the fixed modality of PET -> MRI, FA -> MRI)
- ``sub-XXX_petnative.nii.gz``  FDG-PET-like, as acquired: grey matter hot (deep grey matter a
                                little hotter), white matter at a third, CSF cold; rendered in its
                                own head position (a known rigid motion away from the T1), then
                                blurred by a PET point spread (``pet_fwhm_mm``), given Poisson
                                counting noise (``pet_counts`` at the hottest voxel) and a light
                                post-filter
- ``sub-XXX_fanative.nii.gz``   FA-like, as acquired: white matter bright (deep tracts brighter
                                than white matter near the cortex), grey matter dim, CSF dark,
                                skull-stripped, Rician noise; its own rigid position plus an
                                EPI-like smooth distortion along y (phase encoding)
- ``sub-XXX_pet.nii.gz`` / ``sub-XXX_fa.nii.gz``  the same two resampled into the T1's space by
                                the true transform: the rigidly co-registered pairs ADNI users get
                                from SPM and the real adapter reads (pre-aligned same-subject pairs:
                                M2M-Reg's semi-supervised bridge pairs)
- ``sub-XXX_labels.nii.gz``     M2M-Reg's groups on the T1 grid where derivable: 1 cerebral white
                                matter, 2 cerebral cortex, 3 ventricles (lateral); the other
                                eight groups are absent (structures.py)
- ``sub-XXX_{pet,fa}native_labels.nii.gz``  those labels moved into each native space (the
                                samplesheet's ``labels_petnative`` / ``labels_fanative``)
- ``sub-XXX_{pet,fa}native_to_t1_disp.nii.gz``  the true displacement w of the native image into
                                the T1 space: aligned(x) = native(x + w(x)), voxel units

``native.csv`` lists the native images with their true displacements. Cross-subject PET -> T1 and
FA -> T1 pairs (the paper's test pairs) are multi-modal and inter-subject; same-subject native ->
T1 pairs are multi-modal with an exact rigid (PET) or rigid + distortion (FA) ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ...errors import InputError
from .. import deform, toy
from ..toy import ToyConfig, template_for
from . import StandIn, Writer, register
from .oasis import subject_displacement, template_fine_labels
from .structures import _inside, _world

# the real adapter's groups (diffreg.data.adapters.adni.GROUPS); fine structure value -> group
ADNI_LABELS = {0: "background", 1: "cerebral white matter", 2: "cerebral cortex", 3: "ventricles",
               4: "cerebellar white matter", 5: "cerebellar cortex", 6: "thalamus", 7: "caudate and accumbens",
               8: "putamen", 9: "brainstem", 10: "hippocampus", 11: "amygdala"}
TO_GROUP = {3: 1, 2: 2, 4: 3, 5: 3}   # WM, cortex, left/right lateral ventricle; the rest background
# the brainstem (group 9): the template's brain tissue in this MNI box (mm, x y z: midline, behind
# the ventricles, below them), so that M2M-Reg's pons normalisation of PET has its reference region
BRAINSTEM_BOX_MM = ((-9.0, -38.0, -45.0), (9.0, -16.0, -12.0))
# FDG uptake relative to cortex (grey matter ~ 3x white matter; deep nuclei slightly above cortex)
PET_VALUES = {"bg": 0.0, "csf": 0.08, "gm": 1.0, "wm": 0.32, "deep": 1.1}
FA_VALUES = {"csf": 0.06, "gm": 0.16, "wm": 0.45, "wm_deep": 0.3}   # wm_deep: extra FA deep in WM


@dataclass
class AdniConfig(ToyConfig):
    pet_fwhm_mm: float = 8.0          # PET resolution (ADNI FDG after harmonisation: 8 mm)
    pet_counts: float = 80.0          # expected counts at the hottest voxel (Poisson noise)
    fa_noise: float = 0.03            # Rician noise std of the FA-like image
    native_rotation_deg: float = 10.0  # head position in the PET / DTI session vs. the T1 session
    native_shift_mm: float = 10.0
    epi_voxels: float = 1.0           # std of the FA image's distortion along y, voxels


def native_maps(shape: tuple[int, ...], rng: np.random.Generator, cfg: AdniConfig, spacing: float,
                epi: bool) -> tuple[np.ndarray, np.ndarray]:
    """(d, w): native(x) = aligned(x + d(x)) and aligned(x) = native(x + w(x)). A rigid motion about
    the grid centre, after (FA: `epi`) an exp(velocity) distortion along axis 1."""
    nd = len(shape)
    rot, _ = deform.random_affine(nd, rng, cfg.native_rotation_deg, 0.0, 0.0)
    shift = rng.uniform(-1, 1, nd) * cfg.native_shift_mm / spacing
    w_rigid = deform.affine_displacement(shape, rot.T, -rot.T @ shift)
    if not epi:
        return deform.affine_displacement(shape, rot, shift), w_rigid
    v = np.zeros((nd, *shape))
    v[1] = cfg.epi_voxels * deform.smooth_noise(shape, rng, max(shape) / 5.0, 1)[0]
    # a field of about a voxel: 4 squarings are as exact as 7 here (and half the time)
    d = deform.compose_affine_after(deform.integrate_velocity(v, 4), rot, shift)
    w = w_rigid + deform.warp_field(deform.integrate_velocity(-v, 4), w_rigid)
    return d, w


def pet_like(tissues: np.ndarray, deep: np.ndarray, d: np.ndarray, rng: np.random.Generator,
             cfg: AdniConfig, spacing: float) -> np.ndarray:
    """tissues (bg, CSF, GM, WM fractions) and the deep-GM mask on the T1 grid -> native PET."""
    v = PET_VALUES
    gain = rng.uniform(0.9, 1.1)   # subject's global uptake
    clean = gain * (v["csf"] * tissues[1] + v["gm"] * tissues[2] + v["wm"] * tissues[3])
    clean = clean + (v["deep"] - v["gm"]) * tissues[2] * deep
    native = deform.warp(clean, d)
    native = ndimage.gaussian_filter(native, cfg.pet_fwhm_mm / 2.355 / spacing, mode="constant")
    counts = rng.poisson(np.clip(native, 0, None) / max(native.max(), 1e-6) * cfg.pet_counts)
    native = ndimage.gaussian_filter(counts / cfg.pet_counts, 2.0 / spacing, mode="constant")   # recon. filter, 2 mm
    return _percentile_scale(native)


def fa_like(tissues: np.ndarray, wm: np.ndarray, brain: np.ndarray, d: np.ndarray, rng: np.random.Generator,
            cfg: AdniConfig, spacing: float) -> np.ndarray:
    """FA from tissue fractions: WM bright, brighter the deeper in WM (corpus callosum, internal
    capsule, centrum semiovale: coherent bundles; partial volume with crossing fibres and cortex
    lowers FA near the grey matter), skull-stripped, Rician noise; then moved to the native space."""
    v = FA_VALUES
    depth = ndimage.distance_transform_edt(wm) * spacing
    deep = np.clip(depth / 8.0, 0, 1)
    texture = 1.0 + 0.12 * deform.smooth_noise(wm.shape, rng, 1.0, 1)[0]   # voxel-scale heterogeneity
    clean = v["csf"] * tissues[1] + v["gm"] * tissues[2] + tissues[3] * (v["wm"] + v["wm_deep"] * deep) * texture
    native = deform.warp(clean * brain, d)
    mask = deform.warp(brain, d) > 0.5
    n = cfg.fa_noise * rng.standard_normal((2, *native.shape))
    native = np.sqrt((native + n[0]) ** 2 + n[1] ** 2) * mask
    return np.clip(native, 0, 1)


def brainstem_mask(fine: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Grey or white matter of the template inside BRAINSTEM_BOX_MM."""
    return np.isin(fine, (2, 3)) & _inside(_world(affine, fine.shape), BRAINSTEM_BOX_MM)


def _percentile_scale(a: np.ndarray) -> np.ndarray:
    """M2M-Reg's normalisation: clip at the 99.9th percentile, min-max to [0, 1]."""
    hi = float(np.percentile(a, 99.9))
    return np.clip(a, 0, hi) / max(hi, 1e-12)


def generate(outdir: str | Path, cfg: AdniConfig, absolute_paths: bool = False) -> pd.DataFrame:
    if not 16 <= cfg.size <= 256:
        raise InputError(f"--size {cfg.size}: must be between 16 and 256")
    split = toy.splits(cfg.n_subjects, cfg.test_fraction, cfg.val_fraction)
    out = Writer(outdir, absolute_paths)
    tpl = template_for(cfg.size, cfg.ndim)
    aff, spacing = tpl.affine, float(np.sqrt((tpl.affine[:3, 0] ** 2).sum()))
    fine_tpl = template_fine_labels(tpl)
    group = np.zeros(8, dtype=np.uint8)
    for k, g in TO_GROUP.items():
        group[k] = g
    groups_tpl = group[fine_tpl]
    if cfg.ndim == 3:
        groups_tpl[brainstem_mask(fine_tpl, aff)] = 9
    rows, native = [], []
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.n_subjects)
    for i, (ss, sp) in enumerate(zip(seeds, split), start=1):
        sid = f"sub-{i:03d}"
        rng = np.random.default_rng(ss)
        u = subject_displacement(tpl, rng, cfg)
        w = lambda a: deform.warp(a.astype(np.float64), u)  # noqa: E731
        brain = np.clip(w(tpl.brain), 0, 1)
        # toy.make_subject's next draws make its `be` image: the T1 is brain's subject, byte for byte
        t1 = toy._minmax((toy._intensity(w(tpl.head), rng, cfg, None) * brain).astype(np.float32))
        tissues = np.stack([w(c) for c in tpl.tissues()])
        fine = deform.warp(fine_tpl, u, order=0)
        groups = deform.warp(groups_tpl, u, order=0)
        rng = np.random.default_rng([cfg.seed, i, 0xAD])
        row = {"subject": sid, "split": sp, "labels": out.labels(f"{sid}_labels.nii.gz", groups, aff),
               "image_t1": out.image(f"{sid}_t1.nii.gz", t1, aff)}
        d_pet, w_pet = native_maps(tpl.shape, rng, cfg, spacing, epi=False)
        d_fa, w_fa = native_maps(tpl.shape, rng, cfg, spacing, epi=True)
        pet = pet_like(tissues, (fine == 6) | (fine == 7), d_pet, rng, cfg, spacing)
        fa = fa_like(tissues, fine == 3, brain, d_fa, rng, cfg, spacing)
        for mod, img, wd in (("pet", pet, w_pet), ("fa", fa, w_fa)):
            row[f"image_{mod}"] = out.image(f"{sid}_{mod}.nii.gz", deform.warp(img, wd), aff)
        for mod, img, wd, dd in (("pet", pet, w_pet, d_pet), ("fa", fa, w_fa, d_fa)):
            row[f"image_{mod}native"] = out.image(f"{sid}_{mod}native.nii.gz", img, aff)
            # the T1's labels moved into the native space, so that the row's label maps stay true
            row[f"labels_{mod}native"] = out.labels(f"{sid}_{mod}native_labels.nii.gz",
                                                    deform.warp(groups, dd, order=0), aff)
            native.append({"subject": sid, "modality": f"{mod}native", "image": row[f"image_{mod}native"],
                           "aligned": row[f"image_{mod}"],
                           "disp": out.field(f"{sid}_{mod}native_to_t1_disp.nii.gz", wd, aff)})
        row["prealigned"] = "false" if cfg.affine else "true"
        rows.append(row)
    out.csv("native.csv", pd.DataFrame(native))
    return out.finish(rows, ADNI_LABELS)


register(StandIn("adni", AdniConfig, generate, "adni",
                 "the brain population as T1, PET-like and FA-like images (native and co-registered), "
                 "M2M-Reg groups where derivable"))
