"""One subject through the preprocessing chain, in this order:
skull-strip (optional) -> affine to the reference (or resample to a spacing) -> resize (optional)
-> crop/pad to a fixed shape -> 2D slice (optional) -> intensities to [0, 1].
All of a subject's images share one transform; label maps follow with nearest-type interpolation.
The crop window comes from the reference's foreground, so that every subject aligned to that
reference is cut identically; without a reference, from the subject's first image.
With --spacing the reference serves the alignment only: the subject is resampled to that spacing
on a grid that holds all of it, and cropped/padded around the centre of mass of its label map
(of its first image where it has none), never onto the reference's field of view.
QC: every label value of an input label map must survive (lost_labels); a 2D slice taken at the
end is the user's choice of anatomy and is not checked."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..io import write_image
from . import crop, intensity, resample, skullstrip, slices
from .affine import align, read_canonical


@dataclass
class Options:
    reference: str | None = None
    transform: str = "Affine"
    shape: Sequence[int] | None = None
    spacing: Sequence[float] | None = None
    resize: Sequence[int] | None = None
    intensity: str = "minmax"
    percentiles: Sequence[float] = (0.0, 99.9)
    skullstrip: str = "none"
    skullstrip_command: str | None = None
    extract_slice: str | None = None
    pons_label: Sequence[int] | None = None
    pet_index: int | None = None
    pons_middle_third: bool = True
    threads: int = 1
    seed: int = 0
    subject: str | None = None        # names the subject in error messages


@dataclass
class Result:
    images: list[np.ndarray]
    labels: list[np.ndarray]
    affine: np.ndarray
    before: np.ndarray
    reference: np.ndarray | None
    mask: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def centre_of_mass(labels: np.ndarray | None, image: np.ndarray) -> tuple[int, ...]:
    """Nearest voxel to the centre of mass of the label map's foreground or, without labels (or an
    empty map), of the image's intensities above its minimum; the array centre if both are flat."""
    from scipy import ndimage

    if labels is not None and (labels > 0).any():
        c = ndimage.center_of_mass(labels > 0)
    else:
        w = image.astype(np.float64) - float(image.min())
        if not w.any():
            return tuple(n // 2 for n in image.shape)
        c = ndimage.center_of_mass(w)
    return tuple(int(np.floor(v + 0.5)) for v in c)


def lost_labels(before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> list[list[int]]:
    """Per label map, the values (background 0 aside) present in `before` and absent in `after`."""
    return [sorted(int(v) for v in set(np.unique(b)) - set(np.unique(a)) if v != 0)
            for b, a in zip(before, after)]


def check_labels(before: Sequence[np.ndarray], after: Sequence[np.ndarray], names: Sequence[str],
                 subject: str | None) -> None:
    lost = lost_labels(before, after)
    bad = [f"{Path(n).name}: {', '.join(map(str, v))}" for n, v in zip(names, lost) if v]
    if bad:
        raise InputError(f"{subject or names[0]}: preprocessing lost label(s) ({'; '.join(bad)}): the output grid "
                         "or crop cuts anatomy off; use --spacing (the subject's own grid) or a larger --shape")


def run_subject(images: Sequence[str], labels: Sequence[str], opt: Options) -> Result:
    if not images:
        raise InputError("no --images given")
    arrs = [read_canonical(p) for p in images]
    labs = [read_canonical(p, labels=True) for p in labels]
    for p, (a, _) in zip(list(images[1:]) + list(labels), arrs[1:] + labs):
        if a.shape != arrs[0][0].shape:
            raise InputError(f"{p}: shape {a.shape} differs from {images[0]} {arrs[0][0].shape}")
    before = arrs[0][0]
    info: dict = {}

    mask = None
    if opt.skullstrip != "none":
        if opt.skullstrip == "external":
            mask = skullstrip.external(images[0], opt.skullstrip_command or "")
        else:
            mask = skullstrip.strip(arrs[0][0], arrs[0][1], opt.skullstrip, threads=opt.threads, seed=opt.seed)
        arrs = [(a * mask, aff) for a, aff in arrs]
        info["skullstrip"] = {"method": opt.skullstrip, "brain_voxels": int(mask.sum())}

    ref_arr = None
    # the subject keeps its own field of view (then resize or crop/pad around its anatomy) when it
    # is resampled to a spacing, or resized without alignment (subjects whose images differ in size
    # and spacing, e.g. CAMUS, ACDC): the reference's grid could cut its anatomy off
    own_grid = bool(opt.spacing) or bool(opt.resize and opt.transform == "none")
    if opt.reference and not (own_grid and opt.transform == "none"):
        src_paths = list(images)
        if mask is not None:  # ANTs reads files: hand it the stripped images
            tmpdir = tempfile.mkdtemp(prefix="diffreg-strip-")
            src_paths = [str(write_image(Path(tmpdir) / Path(p).name, a, aff)) for p, (a, aff) in zip(images, arrs)]
        al = align(src_paths, opt.reference, labels, opt.transform, threads=opt.threads, seed=opt.seed,
                   spacing=opt.spacing)
        out_imgs, out_labs, affine = al.images, [lab.astype(np.int16) for lab in al.labels], al.affine
        info["transform"] = al.transform
        if opt.spacing:
            info["spacing"] = list(map(float, opt.spacing))
        else:
            ref_arr = read_canonical(opt.reference)[0]
        if mask is not None:
            import shutil
            shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        if opt.transform != "none":
            raise InputError(f"--transform {opt.transform} needs --reference")
        if opt.reference:
            info["reference"] = "not used (--transform none with --spacing or --resize: no alignment, own grid)"
        out_imgs = [a for a, _ in arrs]
        out_labs = [lab for lab, _ in labs]
        affine = arrs[0][1]
        if opt.spacing:
            out_imgs = [resample.to_spacing(a, affine, opt.spacing, 1)[0] for a in out_imgs]
            res = [resample.to_spacing(lab, affine, opt.spacing, 0) for lab in out_labs]
            out_labs = [r[0] for r in res]
            affine = resample.to_spacing(arrs[0][0], arrs[0][1], opt.spacing, 0)[1]
            info["spacing"] = list(map(float, opt.spacing))

    # a slice given 2D sizes (LDM-Morph's ACDC: mid-slice, resize 112^2, pad 128^2) is taken first;
    # the labels are then checked on that slice (the slice itself is the user's choice of anatomy)
    expected_labels = [lab for lab, _ in labs]
    if opt.extract_slice and _sizes_for_slice(opt, out_imgs[0].ndim):
        out_imgs, out_labs, ref_arr, affine = _take_slice(opt, out_imgs, out_labs, ref_arr, affine, info)
        expected_labels = [lab.copy() for lab in out_labs]

    if opt.resize:
        new_aff = resample.to_shape(out_imgs[0], affine, opt.resize, 0)[1]
        out_imgs = [resample.to_shape(a, affine, opt.resize, 1)[0] for a in out_imgs]
        out_labs = [resample.to_shape(lab, affine, opt.resize, 0)[0] for lab in out_labs]
        if ref_arr is not None:
            ref_arr = resample.to_shape(ref_arr, affine, opt.resize, 1)[0]
        affine = new_aff
        info["resize"] = list(map(int, opt.resize))

    if opt.shape:
        shape = tuple(int(s) for s in opt.shape)
        if len(shape) != out_imgs[0].ndim:
            raise InputError(f"--shape {list(shape)}: needs {out_imgs[0].ndim} values for a {out_imgs[0].ndim}D image")
        if own_grid and all(s >= n for s, n in zip(shape, out_imgs[0].shape)):
            centre = tuple(n // 2 for n in out_imgs[0].shape)   # padding only: centred, nothing to lose
        elif own_grid:
            centre = centre_of_mass(out_labs[0] if out_labs else None, out_imgs[0])
        else:
            centre = crop.foreground_centre(ref_arr if ref_arr is not None else out_imgs[0])
        start = crop.crop_window(out_imgs[0].shape, centre, shape)
        out_imgs = [crop.crop_or_pad(a, start, shape) for a in out_imgs]
        out_labs = [crop.crop_or_pad(lab, start, shape) for lab in out_labs]
        if ref_arr is not None:
            ref_arr = crop.crop_or_pad(ref_arr, start, shape)
        affine = crop.shifted_affine(affine, start)
        info["crop_start"] = list(start)
        info["shape"] = list(shape)

    check_labels(expected_labels, out_labs, list(labels), opt.subject)

    if opt.extract_slice and "slice" not in info:
        out_imgs, out_labs, ref_arr, affine = _take_slice(opt, out_imgs, out_labs, ref_arr, affine, info)

    ranges = []
    for i, a in enumerate(out_imgs):
        ranges.append([float(a.min()), float(a.max())])
        if opt.pet_index is not None and i == opt.pet_index:
            if not out_labs:
                raise InputError("pons normalisation needs --labels (a label map with the pons)")
            pons = intensity.pons_mask(out_labs[0], opt.pons_label or [16], middle_third=opt.pons_middle_third)
            out_imgs[i] = intensity.pons_normalise(a, pons, upper=opt.percentiles[1])
        else:
            out_imgs[i] = intensity.normalise(a, opt.intensity, *opt.percentiles)
    info["input_ranges"] = ranges
    return Result(out_imgs, out_labs, affine, before, ref_arr, mask, info)


def _sizes_for_slice(opt: Options, ndim: int) -> bool:
    """--resize / --shape written for the slice (one value fewer than the volume has axes)."""
    sizes = [v for v in (opt.resize, opt.shape) if v]
    return bool(sizes) and all(len(v) == ndim - 1 for v in sizes)


def _take_slice(opt, out_imgs, out_labs, ref_arr, affine, info):
    """The --extract-slice slice of every image, label map and the reference, and its affine."""
    axis, where = slices.parse_slice(opt.extract_slice)
    k = slices.slice_index(out_imgs[0].shape, axis, where, out_labs[0] if out_labs else None)
    new_aff = slices.extract(out_imgs[0], affine, axis, k)[1]
    out_imgs = [slices.extract(a, affine, axis, k)[0] for a in out_imgs]
    out_labs = [slices.extract(lab, affine, axis, k)[0] for lab in out_labs]
    if ref_arr is not None:
        ref_arr = slices.extract(ref_arr, affine, axis, k)[0]
    info["slice"] = {"axis": axis, "index": k}
    return out_imgs, out_labs, ref_arr, new_aff
