"""Classical registration baselines (ANTs SyN, NiftyReg, LDDMM, optional FireANTs), run on the
same footing as the learned methods: each returns a voxel-unit backward displacement on the fixed
grid and `run_baseline` writes it with images warped by the project's one warp.

Adding a baseline is one module that subclasses `Baseline` and registers it in `BASELINES`.
"""
from . import syn, niftyreg, lddmm, fireants  # noqa: F401  (registration side effects)
from .base import BASELINES, Baseline, BaselineResult, Volume
from .runner import run_baseline, load_volumes, get_baseline

__all__ = ["BASELINES", "Baseline", "BaselineResult", "Volume", "run_baseline", "load_volumes",
           "get_baseline"]
