"""`run_baseline`: one pair through one classical tool, outputs written like any learned method's.

The tool only has to return a voxel-unit displacement; the warped image and labels are made here
with the project's one warp, so every method is resampled the same way, and evaluation (which
re-warps from ``disp.nii.gz``) sees exactly these images.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import RunManifest, read_image, read_labels, write_field, write_image
from .base import BASELINES, Baseline, Volume, scratch_dir

FILES = {"disp": "disp.nii.gz", "warped": "warped.nii.gz", "warped_labels": "warped_labels.nii.gz",
         "run": "run.json"}


def _stem(path: str | os.PathLike) -> str:
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def load_volumes(fixed_path, moving_path, moving_labels_path=None) -> tuple[Volume, Volume, np.ndarray | None]:
    """Read the pair (RAS canonical) and check it can be registered on one grid."""
    fixed = Volume(*read_image(fixed_path), path=Path(fixed_path))
    moving = Volume(*read_image(moving_path), path=Path(moving_path))
    for vol in (fixed, moving):
        if vol.ndim not in (2, 3):
            raise InputError(f"{vol.path}: expected a 2D or 3D image, got shape {vol.array.shape}")
    if fixed.array.shape != moving.array.shape:
        raise InputError(f"{moving_path}: shape {moving.array.shape} differs from the fixed image "
                         f"{fixed_path} {fixed.array.shape} (resample both to one grid first)")
    labels = None
    if moving_labels_path is not None:
        labels, _ = read_labels(moving_labels_path)
        if labels.shape != moving.array.shape:
            raise InputError(f"{moving_labels_path}: shape {labels.shape} differs from the moving image "
                             f"{moving.array.shape}")
        if not np.any(labels):
            raise InputError(f"{moving_labels_path}: empty label map")
    return fixed, moving, labels


def get_baseline(name: str) -> Baseline:
    try:
        return BASELINES.build(name)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None


def run_baseline(name: str, fixed_path, moving_path, moving_labels_path, outdir, threads: int = 1,
                 config: dict[str, Any] | None = None, *, preset: str | None = None, seed: int = 0,
                 fixed_labels_path=None, pair: str | None = None, method: str | None = None,
                 keep_work: bool = False) -> dict[str, Any]:
    """Register ``moving`` to ``fixed`` with baseline ``name`` and write into ``outdir``:
    ``disp.nii.gz`` (voxel units, backward map, fixed affine), ``warped.nii.gz``,
    ``warped_labels.nii.gz`` (when moving labels are given) and ``run.json``.

    ``config`` overrides single options of ``preset``. ``method`` is the name written to run.json
    (default: the baseline name, plus ``-<preset>`` for a non-default preset). Returns run.json's
    content. Outputs appear together: they are written to a staging folder and moved in, run.json
    last, so a failed run leaves no run.json.
    """
    import torch

    from .. import spatial  # deferred, as torch: listing the baselines and their presets needs neither

    if threads < 1:
        raise InputError(f"threads must be >= 1, got {threads}")
    baseline = get_baseline(name)
    preset, cfg = baseline.resolve_config(preset, config)
    reason = baseline.available()
    if reason:
        raise InputError(f"{name}: {reason}")
    fixed, moving, labels = load_volumes(fixed_path, moving_path, moving_labels_path)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(threads)  # also the count our warp runs with, and what run.json reports
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    method = method or (name if preset == baseline.default_preset else f"{name}-{preset}")
    manifest = RunManifest("baseline", {
        "baseline": name, "preset": preset, "config": cfg, "threads": threads,
        "fixed": fixed_path, "moving": moving_path, "moving_labels": moving_labels_path,
    }, seed=seed)

    with scratch_dir(outdir, keep=keep_work) as work:
        result = baseline.register(fixed, moving, work, threads, cfg, seed)
    disp = np.asarray(result.disp, dtype=np.float32)
    if disp.shape != (fixed.ndim, *fixed.array.shape):
        raise RuntimeError(f"{name} returned a field of shape {disp.shape}, expected "
                           f"{(fixed.ndim, *fixed.array.shape)}")
    if not np.all(np.isfinite(disp)):
        raise RuntimeError(f"{name} returned a field with NaN or Inf values")

    stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=outdir))
    try:
        write_field(stage / FILES["disp"], disp, fixed.affine)
        warped = spatial.warp_numpy(moving.array, disp, mode="linear")
        write_image(stage / FILES["warped"], warped.astype(np.float32), fixed.affine)
        if labels is not None:
            warped_labels = spatial.warp_numpy(labels, disp, mode="nearest")
            write_image(stage / FILES["warped_labels"], warped_labels, fixed.affine)
        manifest.update(
            device=result.device,
            method=method,
            pair=pair or f"{_stem(moving_path)}__{_stem(fixed_path)}",
            fixed=str(fixed_path), moving=str(moving_path),
            fixed_labels=str(fixed_labels_path) if fixed_labels_path else None,
            moving_labels=str(moving_labels_path) if moving_labels_path else None,
            baseline=name, preset=preset, config=cfg,
            tool_version=baseline.version(),
            tool_threads=threads,
            register_time_s=round(result.registration_s, 3),
            **(result.extra or {}),
        )
        manifest.write(stage / FILES["run"])
        stale = outdir / FILES["warped_labels"]
        if labels is None and stale.exists():  # from an earlier run of this folder with labels
            stale.unlink()
        for key in ("disp", "warped", "warped_labels", "run"):  # run.json last
            src = stage / FILES[key]
            if src.exists():
                os.replace(src, outdir / FILES[key])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return manifest.data
