"""Affine (or rigid) alignment to a reference with ANTsPy; the same transform moves every image
of a subject (linear) and its label maps (ANTs' genericLabel interpolation)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..io import read_image, read_labels
from ..packages import import_ants

TRANSFORMS = ("Affine", "Rigid", "Similarity", "TRSAA", "none")


def seed_ants(seed: int) -> None:
    """Make ANTs' random metric sampling repeatable. `ants.registration(random_seed=...)` alone is
    not: two runs with the same seed gave affine scalings 1.22 and 1.16 (antspyx 0.6.3); ANTs
    reads ANTS_RANDOM_SEED when it samples, and with it the same seed gives the same transform."""
    os.environ["ANTS_RANDOM_SEED"] = str(int(seed))


def pyramid(shape: Sequence[int], min_size: int = 12) -> dict:
    """ANTs' default affine pyramid (shrink 6, 4, 2, 1) without the levels that would shrink the
    image below `min_size` voxels a side: on 32^3 toy images the 6x level has 5 voxels a side and
    sends the optimiser into local minima."""
    levels = [(2100, 6, 3), (1200, 4, 2), (1200, 2, 1), (10, 1, 0)]
    keep = [lv for lv in levels if min(shape) / lv[1] >= min_size or lv[1] == 1]
    if len(keep) < len(levels):  # the finest level gets real iterations when coarse ones are dropped
        keep[-1] = (200, 1, 0)
    return {"aff_iterations": tuple(k[0] for k in keep), "aff_shrink_factors": tuple(k[1] for k in keep),
            "aff_smoothing_sigmas": tuple(k[2] for k in keep)}


@dataclass
class Aligned:
    images: list[np.ndarray]          # on the reference grid, RAS array order
    labels: list[np.ndarray]
    affine: np.ndarray                # RAS affine of that grid
    transform: dict = field(default_factory=dict)


def to_canonical(arr: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorient an array given in a file's voxel order to the closest canonical (RAS) order."""
    import nibabel as nib
    if arr.ndim == 2:  # nibabel reorients 3D; treat 2D as a single slice
        img = nib.as_closest_canonical(nib.Nifti1Image(arr[..., None], affine))
        return np.asarray(img.dataobj)[..., 0], img.affine
    img = nib.as_closest_canonical(nib.Nifti1Image(arr, affine))
    return np.asarray(img.dataobj), img.affine


def read_canonical(path: str | Path, labels: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(array, affine) in RAS order, 2D included; one-line errors for missing/unreadable files and
    NaN/Inf voxels (diffreg.io's readers)."""
    return read_labels(path) if labels else read_image(path)


def _read(ants, path: Path, ndim: int | None = None):
    read_canonical(path)  # one-line errors for missing files and NaN/Inf voxels
    img = ants.image_read(str(path))
    if img.dimension == 3 and img.shape[-1] == 1:  # 2D stored as (X, Y, 1)
        img = ants.slice_image(img, axis=2, idx=0)
    if ndim is not None and img.dimension != ndim:
        raise InputError(f"{path}: {img.dimension}D image but the reference is {ndim}D")
    return img


def spacing_grid(ants, ref, moving, spacing: Sequence[float], fixed_to_moving=None):
    """An empty image in the reference's space and orientation, with voxel size `spacing`, that
    covers the whole moving image once moved there (its corners through the inverse of the
    fixed -> moving transform): the output grid of an alignment with --spacing, so that the
    reference's field of view never cuts the subject."""
    nd = ref.dimension
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (nd,))
    if np.any(sp <= 0):
        raise InputError(f"--spacing {list(spacing)}: must be positive")
    inv = fixed_to_moving.invert() if fixed_to_moving is not None else None
    corners = []
    for bits in np.ndindex(*(2,) * nd):  # voxel-centre corners, widened by half a voxel
        idx = [(-0.5 if b == 0 else n - 0.5) for b, n in zip(bits, moving.shape)]
        p = np.asarray(moving.origin) + np.asarray(moving.direction) @ (np.asarray(moving.spacing) * np.asarray(idx))
        corners.append(inv.apply_to_point(tuple(p)) if inv is not None else tuple(p))
    d = np.asarray(ref.direction, dtype=float)
    q = np.asarray(corners) @ d  # coordinates along the reference's axes
    lo, hi = q.min(0), q.max(0)
    shape = tuple(int(n) for n in np.maximum(np.ceil((hi - lo) / sp - 1e-6), 1))
    origin = d @ (lo + 0.5 * sp)  # centre of the first voxel
    return ants.make_image(shape, 0.0, spacing=tuple(sp), origin=tuple(origin), direction=d)


def _grid(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """A file's voxel grid from its header: (shape, 2D stored as (X, Y, 1) counted 2D; affine)."""
    import nibabel as nib

    img = nib.load(str(path))
    shape = tuple(img.shape)
    return (shape[:2] if len(shape) == 3 and shape[-1] == 1 else shape), img.affine


def on_reference_grid(images: Sequence[str | Path], reference: str | Path,
                      labels: Sequence[str | Path] = ()) -> Aligned | None:
    """Without a transform, a subject whose every file already has the reference's shape and
    affine (prealigned data saved on one grid) is its own resampling onto that grid: read as is,
    voxel for voxel, without ANTs (importing it is 3 of such a task's 4 seconds). None otherwise."""
    try:
        shape, affine = _grid(reference)
        grids = [_grid(p) for p in [*images, *labels]]
    except Exception:  # noqa: BLE001  missing or unreadable: the ANTs path reports it in one line
        return None
    if any(s != shape or not np.allclose(a, affine, rtol=0, atol=1e-6) for s, a in grids):
        return None
    imgs = [read_canonical(p) for p in images]
    return Aligned([a for a, _ in imgs], [read_canonical(p, labels=True)[0] for p in labels],
                   read_canonical(reference)[1], {"type": "none", "resampled": False})


def align(images: Sequence[str | Path], reference: str | Path, labels: Sequence[str | Path] = (),
          transform: str = "Affine", threads: int | None = 1, seed: int = 0,
          moving_index: int = 0, spacing: Sequence[float] | None = None) -> Aligned:
    """Register images[moving_index] to `reference` and resample every image and label map of the
    subject onto the reference grid with that one transform. With `spacing`, the output grid is
    the reference's space at that voxel size, wide enough for the whole subject (spacing_grid):
    the reference then serves only the alignment."""
    if transform not in TRANSFORMS:
        raise InputError(f"--transform {transform}: unknown (choose from {', '.join(TRANSFORMS)})")
    if not images:
        raise InputError("no --images given")
    import nibabel as nib

    if transform == "none" and spacing is None:
        same = on_reference_grid(images, reference, labels)
        if same is not None:
            same.transform.update(moving=str(images[moving_index]), reference=str(reference))
            return same
    ants = import_ants(threads)
    ref = _read(ants, Path(reference))
    movs = [_read(ants, Path(p), ref.dimension) for p in images]
    labs = [_read(ants, Path(p), ref.dimension) for p in labels]
    info: dict = {"type": transform, "moving": str(images[moving_index]), "reference": str(reference)}
    tfiles: list[str] = []
    grid = ref
    try:
        if transform == "none":
            grid = ref if spacing is None else spacing_grid(ants, ref, movs[moving_index], spacing)
            warp = lambda img, interp: ants.resample_image_to_target(img, grid, interp_type=interp)  # noqa: E731
        else:
            seed_ants(seed)
            reg = ants.registration(ref, movs[moving_index], type_of_transform=transform, random_seed=seed,
                                    **pyramid(ref.shape))
            tfiles = list(reg["fwdtransforms"]) + list(reg["invtransforms"])
            tx = ants.read_transform(reg["fwdtransforms"][0])
            info["parameters"] = [float(v) for v in tx.parameters]
            info["fixed_parameters"] = [float(v) for v in tx.fixed_parameters]
            grid = ref if spacing is None else spacing_grid(ants, ref, movs[moving_index], spacing, tx)
            warp = lambda img, interp: ants.apply_transforms(grid, img, reg["fwdtransforms"],  # noqa: E731
                                                            interpolator=interp)
        out_imgs = [warp(m, "linear").numpy().astype(np.float32) for m in movs]
        out_labs = [np.rint(warp(lab, "genericLabel").numpy()).astype(np.int16) for lab in labs]
    finally:
        for f in set(tfiles):
            if os.path.exists(f):
                os.remove(f)
    if grid is ref:
        ref_aff = nib.load(str(reference)).affine
    else:  # the NIfTI affine of the new grid, as ITK writes it (2D included)
        import tempfile
        with tempfile.TemporaryDirectory(prefix="diffreg-grid-") as tmp:
            ants.image_write(grid, str(Path(tmp) / "grid.nii.gz"))
            ref_aff = nib.load(str(Path(tmp) / "grid.nii.gz")).affine
    canon = [to_canonical(a, ref_aff) for a in out_imgs]
    canon_l = [to_canonical(a, ref_aff)[0] for a in out_labs]
    affine = canon[0][1]
    return Aligned([c[0] for c in canon], canon_l, affine, info)
