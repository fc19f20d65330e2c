"""ANTs SyN through ANTsPy, with each paper's configuration as a named preset.

Presets (reference-facts §3 and the papers):
- ``ldm_morph``: LDM-Morph's command ``ANTs 3 -m CC[f,m,1,2] -t SyN[0.25] -r Gauss[3,0.25]
  -i 160x80x40 --continue-affine false`` as its ANTsPy equivalent (deformable only).
- ``m2m_reg``: M2M-Reg's table row "SyN, Gaussian, MI"; the paper names no other setting, so the
  rest are ANTsPy's ``SyN`` defaults (affine then deformable, Mattes MI, 40x20x0).
- ``diffusemorph``: DiffuseMorph's brain SyN row gives no settings; its atlas-based brain protocol
  is VoxelMorph's, whose SyN is CC with SyN[0.25], Gauss[9,0.2], 201x201x201 on affinely
  pre-aligned scans, so deformable only (CC radius 4, ANTs' usual brain setting).
- ``test``: the ``ldm_morph`` shape with few iterations, for CI.

The composite forward transform (fixed physical point -> moving physical point, LPS mm, any
direction matrix) is turned into one displacement image on the fixed grid by
``antsApplyTransforms`` and converted to voxel units with both images' geometry.
"""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..preprocess.affine import seed_ants
from .base import BASELINES, Baseline, BaselineResult, Volume, timed
from .geometry import ItkGeometry, itk_geometry_from_affine, physical_to_voxel_displacement

_COMMON = {"aff_metric": "mattes", "aff_sampling": 32, "aff_iterations": [2100, 1200, 1200, 10]}

_LDM_MORPH = {"type_of_transform": "SyNOnly", "syn_metric": "CC", "syn_sampling": 2,
              "grad_step": 0.25, "flow_sigma": 3.0, "total_sigma": 0.25,
              "reg_iterations": [160, 80, 40], **_COMMON}

PRESETS: dict[str, dict[str, Any]] = {
    "ldm_morph": _LDM_MORPH,
    "m2m_reg": {"type_of_transform": "SyN", "syn_metric": "mattes", "syn_sampling": 32,
                "grad_step": 0.2, "flow_sigma": 3.0, "total_sigma": 0.0,
                "reg_iterations": [40, 20, 0], **_COMMON},
    "diffusemorph": {"type_of_transform": "SyNOnly", "syn_metric": "CC", "syn_sampling": 4,
                     "grad_step": 0.25, "flow_sigma": 9.0, "total_sigma": 0.2,
                     "reg_iterations": [201, 201, 201], **_COMMON},
    # LDM-Morph's settings with fewer iterations, for CI
    "test": {**_LDM_MORPH, "reg_iterations": [40, 20, 10]},
}


def import_ants(threads: int):
    """Import ANTsPy with ITK's thread count set first: ITK reads the variable once, at its first
    multi-threaded call, so a later change in the same process has no effect."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)
    import ants
    return ants


def to_ants(ants, vol: Volume):
    """ANTs image of a RAS-canonical array: same voxel order, geometry converted to LPS."""
    geom = itk_geometry_from_affine(vol.affine, vol.ndim)
    return ants.from_numpy(np.ascontiguousarray(vol.array, dtype=np.float32),
                           origin=tuple(float(v) for v in geom.origin),
                           spacing=tuple(float(v) for v in geom.spacing),
                           direction=np.asarray(geom.direction, dtype=np.float64))


def geometry_of(img) -> ItkGeometry:
    return ItkGeometry(np.asarray(img.origin, dtype=np.float64), np.asarray(img.spacing, dtype=np.float64),
                       np.asarray(img.direction, dtype=np.float64))


def transforms_to_voxel_displacement(ants, fixed_img, moving_img, transforms: list[str], prefix: str) -> np.ndarray:
    """Voxel displacement (D, *S) of ANTs forward transforms (as ``ants.registration`` returns
    them, or any list ``antsApplyTransforms`` accepts) on ``fixed_img``'s grid."""
    comp = ants.apply_transforms(fixed=fixed_img, moving=moving_img, transformlist=list(transforms),
                                 compose=prefix)
    field = ants.image_read(comp).numpy()  # (*S, D) physical LPS mm
    phys = np.moveaxis(np.asarray(field, dtype=np.float64), -1, 0)
    return physical_to_voxel_displacement(phys, geometry_of(fixed_img).index_to_physical,
                                          geometry_of(moving_img).index_to_physical)


class SyN(Baseline):
    name = "syn"
    presets = PRESETS
    default_preset = "ldm_morph"

    def version(self) -> str:
        try:
            return f"antspyx {metadata.version('antspyx')}"
        except metadata.PackageNotFoundError:
            return "antspyx (unknown version)"

    def available(self) -> str | None:
        try:
            metadata.version("antspyx")
        except metadata.PackageNotFoundError:
            return "ANTsPy (antspyx) is not installed"
        return None

    def register(self, fixed: Volume, moving: Volume, workdir: Path, threads: int,
                 config: dict[str, Any], seed: int) -> BaselineResult:
        ants = import_ants(threads)
        ants.config._random_seed = int(seed)  # passed to antsRegistration as --random-seed
        seed_ants(seed)
        fi, mi = to_ants(ants, fixed), to_ants(ants, moving)
        kwargs = dict(config)
        kwargs["reg_iterations"] = tuple(kwargs["reg_iterations"])
        kwargs["aff_iterations"] = tuple(kwargs["aff_iterations"])

        def _run():
            reg = ants.registration(fixed=fi, moving=mi, outprefix=str(workdir / "syn_"), **kwargs)
            return transforms_to_voxel_displacement(ants, fi, mi, reg["fwdtransforms"], str(workdir / "fwd_"))

        disp, seconds = timed(_run)
        return BaselineResult(disp=disp, registration_s=seconds, device="cpu",
                              extra={"itk_threads": int(os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"])})


BASELINES.register("syn")(SyN)
