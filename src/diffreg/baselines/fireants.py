"""FireANTs (optional): greedy diffeomorphic registration on PyTorch, CPU or GPU.

FireANTs is not in the pinned requirements: its licence (FireANTs License 1.0) lets a project use
it as a dependency installed from PyPI as long as its code is not copied, which is all this module
does; install it yourself (``pip install fireants``; it pins ``simpleitk==2.2.1``). Without it the
baseline reports itself unavailable in one line. docs/baselines.md says more.

Presets: ``m2m_reg`` follows M2M-Reg's row "FireANTs, Gaussian, MI" (greedy, mutual information,
Gaussian-smoothed gradients and warps, FireANTs' own defaults otherwise); ``test`` is small.
The field is saved with FireANTs' own ANTs-compatible writer (physical LPS mm on the fixed grid)
and converted to voxels like ANTs' fields.
"""
from __future__ import annotations

import importlib.util
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .base import BASELINES, Baseline, BaselineResult, Volume
from .geometry import itk_geometry_from_affine, physical_to_voxel_displacement

_DEFAULTS = {"algorithm": "greedy", "loss_type": "mi", "scales": [4, 2, 1], "iterations": [200, 100, 50],
             "optimizer_lr": 0.5, "smooth_grad_sigma": 1.0, "smooth_warp_sigma": 0.5, "cc_kernel_size": 7,
             "device": "auto"}

PRESETS: dict[str, dict[str, Any]] = {
    "m2m_reg": dict(_DEFAULTS),
    "test": {**_DEFAULTS, "loss_type": "cc", "cc_kernel_size": 5, "scales": [2, 1], "iterations": [100, 50]},
}


def _write_nifti(path: Path, vol: Volume) -> None:
    arr = np.asarray(vol.array, dtype=np.float32)
    img = nib.Nifti1Image(arr, vol.affine)
    img.set_sform(vol.affine, code=1)
    img.set_qform(vol.affine, code=1)
    nib.save(img, str(path))


class FireANTs(Baseline):
    name = "fireants"
    presets = PRESETS
    default_preset = "m2m_reg"

    def available(self) -> str | None:
        if importlib.util.find_spec("fireants") is None:
            return "FireANTs is an optional dependency and is not installed (pip install fireants)"
        return None

    def version(self) -> str:
        try:
            return f"fireants {metadata.version('fireants')}"
        except metadata.PackageNotFoundError:
            return "fireants (not installed)"

    def register(self, fixed: Volume, moving: Volume, workdir: Path, threads: int,
                 config: dict[str, Any], seed: int) -> BaselineResult:
        import torch
        from fireants.io.image import BatchedImages, Image
        from fireants.registration.greedy import GreedyRegistration
        from fireants.registration.syn import SyNRegistration

        device = config["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch.set_num_threads(threads)
        paths = {}
        for key, vol in (("fixed", fixed), ("moving", moving)):
            paths[key] = workdir / f"{key}.nii.gz"
            _write_nifti(paths[key], vol)
        start = time.perf_counter()
        fi = BatchedImages([Image.load_file(str(paths["fixed"]), device=device)])
        mi = BatchedImages([Image.load_file(str(paths["moving"]), device=device)])
        cls = {"greedy": GreedyRegistration, "syn": SyNRegistration}[config["algorithm"]]
        reg = cls(scales=list(config["scales"]), iterations=list(config["iterations"]),
                  fixed_images=fi, moving_images=mi, loss_type=config["loss_type"],
                  optimizer_lr=config["optimizer_lr"], smooth_grad_sigma=config["smooth_grad_sigma"],
                  smooth_warp_sigma=config["smooth_warp_sigma"], cc_kernel_size=config["cc_kernel_size"])
        reg.optimize()
        warp_path = workdir / "fireants_warp.nii.gz"
        reg.save_as_ants_transforms(str(warp_path))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        field = np.asarray(nib.load(str(warp_path)).dataobj, dtype=np.float64)
        ndim = fixed.ndim
        field = field.reshape(*fixed.array.shape, ndim)  # ITK vector image: (*S, [1,] D) LPS mm
        geom_f = itk_geometry_from_affine(fixed.affine, ndim)
        geom_m = itk_geometry_from_affine(moving.affine, ndim)
        disp = physical_to_voxel_displacement(np.moveaxis(field, -1, 0), geom_f.index_to_physical,
                                              geom_m.index_to_physical)
        return BaselineResult(disp=disp, registration_s=seconds, device=device)


BASELINES.register("fireants")(FireANTs)
