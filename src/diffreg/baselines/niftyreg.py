"""NiftyReg ``reg_f3d`` (optionally after ``reg_aladin``) from the real binaries.

The binaries come from the PyPI ``niftyreg`` source package (``envs/build-niftyreg.sh``). They
are looked for in ``$NIFTYREG_BIN`` (only there, when it is set), else in ``niftyreg.bin_path``
when that package is importable, the running environment's ``bin/``, ``PATH``, and the build
script's default place ``$DIFFREG_CACHE/niftyreg-<version>`` (``~/.cache/diffreg-nf``).

Presets:
- ``default``: reg_f3d's own defaults (-be 0.001 -le 0.01 -sx 5 voxels -ln 3 -maxit 150, NMI).
- ``m2m_reg``: M2M-Reg's row "NiftyReg, BE, LNCC": bending energy only (-be 0.001 -le 0) and
  LNCC with a 5-voxel Gaussian (``--lncc -5``, the same sigma as M2M-Reg's LNCC); the paper
  names no other value, so the rest are the defaults.
- ``test``: two levels and few iterations, for CI.

``reg_transform -disp`` writes the displacement in RAS mm (the reference image's sform) on the
fixed grid; it is converted to voxel units with both images' affines.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import nibabel as nib
import numpy as np

from .base import BASELINES, Baseline, BaselineResult, Volume, timed
from .geometry import nifti_world_matrix, physical_to_voxel_displacement

VERSION = "1.5.70rc1"  # the PyPI version envs/build-niftyreg.sh builds by default
TOOLS = ("reg_aladin", "reg_f3d", "reg_transform", "reg_resample")

_DEFAULTS = {"be": 0.001, "le": 0.01, "sx": -5.0, "ln": 3, "maxit": 150, "similarity": "nmi",
             "lncc_sigma": -5.0, "affine": False, "extra_args": []}

PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(_DEFAULTS),
    "m2m_reg": {**_DEFAULTS, "le": 0.0, "similarity": "lncc"},
    "test": {**_DEFAULTS, "sx": -4.0, "ln": 2, "maxit": 100, "similarity": "ssd"},
}


def default_cache_bin() -> Path:
    """Where ``envs/build-niftyreg.sh $DIFFREG_CACHE`` puts the tools by default."""
    cache = Path(os.environ.get("DIFFREG_CACHE") or Path.home() / ".cache" / "diffreg-nf")
    return cache / f"niftyreg-{VERSION}" / "niftyreg" / "bin"


def _has_tools(folder: Path) -> bool:
    return all((folder / t).is_file() and os.access(folder / t, os.X_OK) for t in TOOLS)


def _candidates() -> Iterator[Path]:
    try:
        import niftyreg  # type: ignore[import-not-found]
        yield Path(niftyreg.bin_path)
    except ImportError:
        pass
    yield Path(sys.prefix) / "bin"          # envs/setup.sh links the tools into the venv
    on_path = shutil.which("reg_f3d")
    if on_path:
        yield Path(on_path).parent
    yield default_cache_bin()


def find_bin() -> tuple[Path | None, str]:
    """(folder with the four tools, '') or (None, why not) as one line. ``$NIFTYREG_BIN``, when
    set, is the only place looked at."""
    env = os.environ.get("NIFTYREG_BIN")
    if env:
        folder = Path(env)
        if _has_tools(folder):
            return folder, ""
        return None, f"NIFTYREG_BIN={env} does not hold {', '.join(TOOLS)}"
    for folder in _candidates():
        if _has_tools(folder):
            return folder, ""
    return None, ("NiftyReg binaries not found: run `envs/build-niftyreg.sh CACHE_DIR` and set "
                  "NIFTYREG_BIN to the folder it prints")


def write_tool_nifti(path: Path, vol: Volume) -> None:
    """Scratch NIfTI for the tool, with sform and qform both set to the array's affine so that
    NiftyReg's world frame is exactly the one our conversion uses."""
    arr = np.asarray(vol.array, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    img = nib.Nifti1Image(arr, vol.affine)
    img.set_sform(vol.affine, code=1)
    img.set_qform(vol.affine, code=1)
    nib.save(img, str(path))


def _run(cmd: list[str], threads: int) -> str:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def read_displacement(path: Path, ndim: int) -> np.ndarray:
    """``reg_transform -disp`` output, stored (X, Y, Z, 1, D), as (D, *S) RAS mm."""
    arr = np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)
    arr = arr.reshape(*arr.shape[:3], arr.shape[-1])
    if ndim == 2:
        arr = arr[:, :, 0, :2]
    return np.moveaxis(arr, -1, 0)


def transform_to_voxel_displacement(folder: Path, transform: Path, ref: Path, fixed: Volume, moving: Volume,
                                    workdir: Path, threads: int = 1) -> np.ndarray:
    """Voxel displacement (D, *S) of any NiftyReg transformation (control-point grid, affine
    text file, deformation field) on the grid of ``ref`` (the NIfTI written from ``fixed``)."""
    disp_path = workdir / "disp_mm.nii.gz"
    _run([str(folder / "reg_transform"), "-ref", str(ref), "-disp", str(transform), str(disp_path),
          "-omp", str(threads)], threads)
    mm = read_displacement(disp_path, fixed.ndim)
    return physical_to_voxel_displacement(mm, nifti_world_matrix(fixed.affine, fixed.ndim),
                                          nifti_world_matrix(moving.affine, moving.ndim))


def f3d_args(config: dict[str, Any]) -> list[str]:
    args = ["-be", str(config["be"]), "-le", str(config["le"]), "-sx", str(config["sx"]),
            "-ln", str(int(config["ln"])), "-maxit", str(int(config["maxit"]))]
    sim = config["similarity"]
    if sim == "lncc":
        args += ["--lncc", str(config["lncc_sigma"])]
    elif sim == "ssd":
        args += ["--ssd"]
    elif sim != "nmi":
        raise ValueError(f"niftyreg similarity must be nmi, lncc or ssd, got {sim!r}")
    return args + [str(a) for a in config["extra_args"]]


class NiftyReg(Baseline):
    name = "niftyreg"
    presets = PRESETS
    default_preset = "default"

    def available(self) -> str | None:
        folder, why = find_bin()
        return None if folder else why

    def version(self) -> str:
        folder, _ = find_bin()
        if folder is None:
            return "niftyreg (not found)"
        try:
            out = subprocess.run([str(folder / "reg_f3d"), "--version"], capture_output=True, text=True,
                                 timeout=30)
            found = re.search(r"\d+\.\d+[.\w]*", out.stdout + out.stderr)
            return f"niftyreg {found.group(0) if found else VERSION}"
        except (OSError, subprocess.SubprocessError):
            return f"niftyreg {VERSION}"

    def register(self, fixed: Volume, moving: Volume, workdir: Path, threads: int,
                 config: dict[str, Any], seed: int) -> BaselineResult:
        folder, why = find_bin()
        if folder is None:
            raise RuntimeError(why)
        ref, flo = workdir / "fixed.nii.gz", workdir / "moving.nii.gz"
        write_tool_nifti(ref, fixed)
        write_tool_nifti(flo, moving)
        omp = ["-omp", str(threads)]
        cpp = workdir / "cpp.nii.gz"

        def _register() -> np.ndarray:
            aff = []
            if config["affine"]:
                _run([str(folder / "reg_aladin"), "-ref", str(ref), "-flo", str(flo),
                      "-aff", str(workdir / "affine.txt"), "-res", str(workdir / "aladin.nii.gz")] + omp,
                     threads)
                aff = ["-aff", str(workdir / "affine.txt")]
            _run([str(folder / "reg_f3d"), "-ref", str(ref), "-flo", str(flo), "-cpp", str(cpp),
                  "-res", str(workdir / "f3d.nii.gz"), "-voff"] + aff + f3d_args(config) + omp, threads)
            return transform_to_voxel_displacement(folder, cpp, ref, fixed, moving, workdir, threads)

        disp, seconds = timed(_register)
        return BaselineResult(disp=disp, registration_s=seconds, device="cpu",
                              extra={"niftyreg_bin": str(folder)})


BASELINES.register("niftyreg")(NiftyReg)

