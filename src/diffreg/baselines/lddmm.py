"""LDDMM (Beg et al. 2005) in PyTorch: time-varying velocities, Sobolev gradient descent.

Settings follow TransMorph's LDDMM baseline (``torch_lddmm`` as its inference script calls it):
intensities x255, a=5, p=2, sigma=4, sigmaR=10, nt=7 velocity fields, 500 iterations, step 2,
gradient descent whose step shrinks by 0.7 whenever the energy does not decrease, stopping at
500 iterations, a step factor below 1e-10 or 2% of the initial energy. Units are voxels (dx=1).
One change, ``backtrack`` (on in every preset): a step that raises the energy is undone before the
step shrinks. torch_lddmm keeps such steps; with its step of 2 the first step on a small image
overshoots by tens of voxels and the run may not recover (``backtrack: false`` restores it).
LDM-Morph's LDDMM row (MSE, five velocity fields, 500 iterations) is the ``ldm_morph`` preset.

Written here rather than depending on torch_lddmm: that file is not a package, pins old torch FFT
APIs, and uses its own grid_sample geometry; this keeps the one warp of the code base.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import __version__
from .base import BASELINES, Baseline, BaselineResult, Volume

_TRANSMORPH = {"a": 5.0, "p": 2, "sigma": 4.0, "sigma_r": 10.0, "nt": 7, "niter": 500,
               "epsilon": 2.0, "min_beta": 1e-10, "energy_fraction": 0.02,
               "intensity_scale": 255.0, "backtrack": True, "device": "auto"}

PRESETS: dict[str, dict[str, Any]] = {
    "transmorph": dict(_TRANSMORPH),
    "ldm_morph": {**_TRANSMORPH, "nt": 5},
    "test": {**_TRANSMORPH, "niter": 150},
}


class LDDMM(Baseline):
    name = "lddmm"
    presets = PRESETS
    default_preset = "transmorph"

    def version(self) -> str:
        import torch

        return f"diffreg {__version__} (torch {torch.__version__})"

    def register(self, fixed: Volume, moving: Volume, workdir: Path, threads: int,
                 config: dict[str, Any], seed: int) -> BaselineResult:
        import torch

        from .lddmm_solver import lddmm   # deferred: torch, only when a registration runs
        torch.set_num_threads(threads)
        cfg = dict(config)
        start = time.perf_counter()
        disp, log = lddmm(moving.array, fixed.array, **cfg)
        if log["device"].startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return BaselineResult(disp=disp, registration_s=seconds, device=log["device"], extra={"lddmm": log})


BASELINES.register("lddmm")(LDDMM)
