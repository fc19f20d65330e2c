"""FireANTs (optional): greedy diffeomorphic registration on PyTorch, CPU or GPU.

FireANTs is not in the pinned requirements: its licence (FireANTs License 1.0) lets a project use
it as a dependency installed from PyPI as long as its code is not copied, which is all this module
does; install it yourself (``pip install fireants``; it pins ``simpleitk==2.2.1``). Without it the
baseline reports itself unavailable in one line. docs/baselines.md says more.

Presets: ``m2m_reg`` follows M2M-Reg's row "FireANTs, Gaussian, MI" (greedy, mutual information,
Gaussian-smoothed gradients and warps, FireANTs' own defaults otherwise); ``test`` is small.
The field is FireANTs' own sampling grid (fixed grid -> normalised moving coordinates, physical
space handled inside FireANTs), turned into voxel units.
"""
from __future__ import annotations

import importlib.util
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..errors import InputError
from .base import BASELINES, Baseline, BaselineResult, Volume
from .geometry import index_grid

_DEFAULTS = {"algorithm": "greedy", "loss_type": "mi", "scales": [4, 2, 1], "iterations": [200, 100, 50],
             "optimizer_lr": 0.5, "smooth_grad_sigma": 1.0, "smooth_warp_sigma": 0.5, "cc_kernel_size": 7,
             "device": "auto"}

PRESETS: dict[str, dict[str, Any]] = {
    "m2m_reg": dict(_DEFAULTS),
    "test": {**_DEFAULTS, "loss_type": "cc", "cc_kernel_size": 5, "scales": [2, 1], "iterations": [100, 50]},
}


def grid_to_voxel_displacement(grid: np.ndarray, moving_shape: tuple[int, ...]) -> np.ndarray:
    """FireANTs' sampling grid -> our voxel displacement (D, *S).

    The grid is laid out like SimpleITK arrays (spatial axes in reverse index order) and its last
    axis holds (x, y[, z]) = ITK index order, normalised with align_corners=True (index =
    (g + 1) (N - 1) / 2, as FireANTs' torch-to-pixel matrix). Our NIfTI files keep the array
    order as ITK index order, so after reversing the spatial axes index d is array axis d."""
    ndim = grid.shape[-1]
    g = np.transpose(grid, tuple(range(ndim))[::-1] + (ndim,))
    g = np.moveaxis(g, -1, 0)
    sizes = np.asarray(moving_shape, dtype=np.float64).reshape(ndim, *([1] * ndim))
    index = (g + 1.0) * (sizes - 1.0) / 2.0
    return index - index_grid(g.shape[1:])


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

        if min(fixed.array.shape) < 32:
            raise InputError(f"{fixed.path}: FireANTs needs at least 32 voxels along every axis "
                             f"(its MIN_IMG_SIZE), got {fixed.array.shape}")
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
        with torch.no_grad():
            grid = reg.get_warped_coordinates(fi, mi)[0]  # (*S reversed, D) in grid_sample's [-1, 1]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        disp = grid_to_voxel_displacement(grid.detach().cpu().double().numpy(), moving.array.shape)
        return BaselineResult(disp=disp, registration_s=seconds, device=device)


BASELINES.register("fireants")(FireANTs)
